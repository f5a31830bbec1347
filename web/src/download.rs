//! Files the browser saves: a chart as PNG, data as CSV.

use wasm_bindgen::JsCast;

/// Makes the browser save `url` (a data: or blob: URL) as `name`.
pub fn save_url(url: &str, name: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    if let Ok(a) = document.create_element("a")
        && let Ok(a) = a.dyn_into::<web_sys::HtmlAnchorElement>()
    {
        a.set_href(url);
        a.set_download(name);
        a.click();
    }
}

/// Makes the browser save `text` as `name`.
pub fn save_text(text: &str, name: &str, mime: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    if let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        && let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob)
    {
        save_url(&url, name);
        // Some browsers read the blob after click() returns: free it a little later.
        gloo_timers::callback::Timeout::new(10_000, move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        })
        .forget();
    }
}
