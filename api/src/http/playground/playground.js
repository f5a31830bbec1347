// Starts GraphiQL against this hub. Served by the hub itself, so that the page runs no inline
// script and its Content-Security-Policy can name every script it allows.
const address = (path, socket) => {
  const url = new URL(path, window.location.origin);
  if (socket) {
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  }
  return url.toString();
};

ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: address('/graphql'), subscriptionUrl: address('/graphql/ws', true) }),
    defaultEditorToolsVisibility: true,
  }),
);
