// Theme before first paint (no flash); the app keeps it in sync afterwards (src/composables/theme.ts).
// A file rather than an inline script: the Content-Security-Policy allows scripts from this server only.
try {
  var t = localStorage.getItem('theme');
  document.documentElement.dataset.theme = t === 'light' ? 'light' : 'dark';
} catch (e) {
  document.documentElement.dataset.theme = 'dark';
}
