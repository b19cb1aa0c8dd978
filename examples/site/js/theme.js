/*
 * Acme Widgets — theme bootstrap (classic script, loaded in <head> before the stylesheet paints).
 * Reads the saved colour-scheme preference and sets data-theme on <html> to avoid a flash of the wrong theme.
 */
(function () {
  'use strict';

  var KEY = 'acme:theme';
  var root = document.documentElement;
  var saved = null;

  try {
    saved = window.localStorage.getItem(KEY);
  } catch (e) {
    // Storage can be disabled (private mode, strict cookie settings); fall back to the OS preference.
  }

  if (saved === 'light' || saved === 'dark') {
    root.setAttribute('data-theme', saved);
  }

  window.acmeSetTheme = function (theme) {
    root.setAttribute('data-theme', theme);
    try {
      window.localStorage.setItem(KEY, theme);
    } catch (e) {
      /* ignore */
    }
  };
})();
