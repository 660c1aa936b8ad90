/* Zones map: the zones of the user's region from /api/v1/zones/zones/geojson (or one zone's geometry), coloured by
   type, with their countdown. No internet tiles: the zones themselves are the map. */
(function () {
  "use strict";
  var el = document.getElementById("zn-map");
  if (!el || typeof L === "undefined") return;
  var cfg = JSON.parse(document.getElementById("zn-map-config").textContent);
  var map = L.map(el, { zoomSnap: 0.25 });
  map.setView([29.9, 121.85], 11);
  function style(colour, proposed) {
    return { color: colour, weight: 2, fillOpacity: proposed ? 0.15 : 0.35, dashArray: proposed ? "6 4" : null };
  }
  function show(data) {
    var layer = L.geoJSON(data, {
      style: function (f) {
        var p = f.properties || {};
        return style((cfg.colours || {})[p.type] || cfg.colour || "#888", p.status === "proposed");
      },
      onEachFeature: function (f, l) {
        var p = f.properties;
        if (!p || !p.ref) return;
        var div = document.createElement("div");
        var a = document.createElement("a");
        a.href = cfg.detail.replace("REF", encodeURIComponent(p.ref));
        a.textContent = p.ref + " " + p.name;
        div.appendChild(a);
        var info = document.createElement("div");
        info.textContent = (cfg.labels[p.type] || p.type) + " · " + p.people + " · " +
          (p.ready ? "✓" : (p.due_at ? p.due_at.slice(0, 10) : ""));
        div.appendChild(info);
        l.bindPopup(div);
      }
    }).addTo(map);
    var b = layer.getBounds();
    if (b.isValid()) map.fitBounds(b, { padding: [10, 10] });
  }
  if (cfg.geometry) {
    show({ type: "Feature", geometry: cfg.geometry, properties: {} });
  } else if (cfg.geojson) {
    fetch(cfg.geojson, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d) show(d); });
  }
})();
