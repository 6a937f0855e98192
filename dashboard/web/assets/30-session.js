// When the session has expired, Dash's requests get 401: go to the login form (and come back
// to this page afterwards) instead of leaving a page that silently stops updating.
(function () {
  "use strict";
  var original = window.fetch;
  if (!original) { return; }
  window.fetch = function () {
    return original.apply(this, arguments).then(function (response) {
      var url = String(response.url || "");
      if (response.status === 401 && url.indexOf("/_dash-") !== -1) {
        var here = window.location.pathname + window.location.search;
        window.location.assign("/login?next=" + encodeURIComponent(here));
      }
      return response;
    });
  };
})();
