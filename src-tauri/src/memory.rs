//! Memory that photos leave behind, on Linux (BENCHMARKS.md, "Photos"). Making a thumbnail
//! decodes a photo into a buffer of tens of megabytes, and scrolling a photo chat shows
//! hundreds of them; neither should stay with the app once it is done.

/// glibc serves a block of 128 KiB or more from its own mapping, which `free` hands back to
/// the OS, but each such block freed raises that threshold to its size (up to 32 MiB). After
/// the first thumbnail, decode buffers come from the heap instead and stay with the process
/// when freed. A fixed threshold keeps every block of `THRESHOLD` or more in its own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_large_blocks_back_to_the_os() {
    const THRESHOLD: libc::c_int = 1 << 20;
    // SAFETY: mallopt only sets a parameter of the allocator; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
    }
}

/// WebKit's memory cache keeps the decoded pixels of images that no element shows any more,
/// up to a size set by its cache model; the default model is a web browser's, which keeps
/// much for going back and forth between pages. This app is one page whose images come from
/// the app itself, and a photo chat scrolled through would fill that cache with pictures
/// already off screen. The document viewer model keeps next to nothing.
#[cfg(target_os = "linux")]
pub fn keep_no_unused_images(window: &tauri::WebviewWindow) -> tauri::Result<()> {
    window.with_webview(|webview| {
        use webkit2gtk::{CacheModel, WebContextExt, WebViewExt};
        if let Some(context) = webview.inner().context() {
            context.set_cache_model(CacheModel::DocumentViewer);
        }
    })
}
