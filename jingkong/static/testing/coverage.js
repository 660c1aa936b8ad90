/* Round progress board: refresh the figures every ~30 s (the page re-rendered by the server, swapped in place), and a
   grid choropleth of coverage on demand (the district's own polygons from /api/v1/geo; no internet tiles). */
(function () {
  "use strict";
  var cfgNode = document.getElementById("cov-config");
  if (!cfgNode) return;
  var cfg = JSON.parse(cfgNode.textContent);
  var T = cfg.labels || {};

  // ---- auto-refresh ----------------------------------------------------------------------------------------------
  var live = document.getElementById("cov-live");
  var seconds = Math.max(10, parseInt((live && live.getAttribute("data-refresh")) || cfg.refresh_seconds || 30, 10));

  function refresh() {
    if (!live || document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("cov-live");
        if (fresh) { live.innerHTML = fresh.innerHTML; }
        if (mapState.shown) { loadCoverage(); }
      })
      .catch(function () {
        var stale = live.querySelector(".cov-stale");
        if (stale) stale.hidden = false;
      });
  }
  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });

  // ---- choropleth ------------------------------------------------------------------------------------------------
  var COLORS = ["#ecfeff", "#a5f3fc", "#67e8f9", "#22d3ee", "#0891b2", "#155e75"];  // 0-50, 50-70, 70-85, 85-95, 95-99, ≥99 %
  var BREAKS = [50, 70, 85, 95, 99];
  var NO_DATA = "#d9dde3";
  var mapState = { shown: false, map: null, layer: null, coverage: {} };
  var statusEl = document.getElementById("cov-map-status");
  var toggle = document.getElementById("cov-map-toggle");
  var mapEl = document.getElementById("cov-map");

  function setStatus(text) { if (statusEl) statusEl.textContent = text || ""; }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + url);
      return r.json();
    });
  }

  function colour(pct) {
    if (pct == null) return NO_DATA;
    for (var i = 0; i < BREAKS.length; i++) { if (pct < BREAKS[i]) return COLORS[i]; }
    return COLORS[COLORS.length - 1];
  }

  function style(feature) {
    var row = mapState.coverage[feature.properties.code];
    return { color: "#334155", weight: 1, fillOpacity: 0.8, fillColor: colour(row ? row.coverage_pct : null) };
  }

  function tooltip(feature) {
    var row = mapState.coverage[feature.properties.code];
    var name = feature.properties.name + " (" + feature.properties.code + ")";
    if (!row) return name + "<br>" + (T.no_data || "");
    var pct = row.coverage_pct == null ? "—" : row.coverage_pct + " %";
    return name + "<br>" + (T.coverage || "") + ": " + pct + "<br>" + (T.not_sampled || "") + ": " + row.not_sampled;
  }

  function restyle() {
    if (!mapState.layer) return;
    mapState.layer.eachLayer(function (l) {
      l.setStyle(style(l.feature));
      l.setTooltipContent(tooltip(l.feature));
    });
  }

  function loadCoverage() {
    return getJSON(cfg.coverage_api + "?level=grid&parent=" + encodeURIComponent(cfg.area)).then(function (body) {
      var byCode = {};
      body.rows.forEach(function (r) { byCode[r.code] = r; });
      mapState.coverage = byCode;
      restyle();
    });
  }

  function legend() {
    var control = L.control({ position: "bottomright" });
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "cov-map-legend");
      var lows = [0].concat(BREAKS);
      div.innerHTML = lows.map(function (low, i) {
        var high = i < BREAKS.length ? "–" + BREAKS[i] : "+";
        return "<i style=\"background:" + COLORS[i] + "\"></i>" + low + high + " %";
      }).join("<br>") + "<br><i style=\"background:" + NO_DATA + "\"></i>" + (T.no_data || "");
      return div;
    };
    return control;
  }

  function showMap() {
    mapState.shown = true;
    mapEl.hidden = false;
    setStatus(T.loading || "");
    var map = mapState.map = L.map(mapEl, { zoomSnap: 0.25, attributionControl: false });
    legend().addTo(map);
    getJSON(cfg.geo_api + "/regions/" + encodeURIComponent(cfg.area)).then(function (region) {
      var bbox = region.properties.bbox;
      var query = "?level=grid" + (bbox ? "&bbox=" + bbox.join(",") : "");
      return Promise.all([getJSON(cfg.geo_api + "/regions" + query), loadCoverage()]);
    }).then(function (results) {
      var features = results[0].features.filter(function (f) {
        return f.geometry && f.properties.code.indexOf(cfg.area) === 0;
      });
      if (!features.length) { setStatus(T.no_data || ""); return; }
      mapState.layer = L.geoJSON({ type: "FeatureCollection", features: features }, {
        style: style,
        onEachFeature: function (feature, layer) {
          layer.bindTooltip(tooltip(feature), { sticky: true });
          layer.on("click", function () {
            var url = new URL(window.location.href);
            url.searchParams.set("parent", feature.properties.code);
            url.searchParams.delete("level");
            window.location.href = url.toString();
          });
        }
      }).addTo(map);
      map.fitBounds(mapState.layer.getBounds(), { padding: [10, 10] });
      setStatus("");
    }).catch(function () { setStatus(T.load_error || "error"); });
  }

  if (toggle && mapEl && window.L) {
    toggle.addEventListener("click", function () {
      if (!mapState.shown) { showMap(); toggle.hidden = true; }
    });
  } else if (toggle) {
    toggle.hidden = true;
  }
})();
