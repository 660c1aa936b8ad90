/* Route map: routes, vehicles (last status), pickups, waiting batches and facilities from the GeoJSON API; refreshed
   every 30 s. No internet tiles: the features alone, on a plain background. */
(function () {
  "use strict";
  var cfgNode = document.getElementById("tf-config");
  if (!cfgNode || !window.L) return;
  var cfg = JSON.parse(cfgNode.textContent);
  var status = document.getElementById("tf-map-status");
  var map = L.map("tf-map", { preferCanvas: true }).setView([cfg.center[1], cfg.center[0]], 12);
  var layer = null;
  var COLORS = { planned: "#2563eb", dispatched: "#d97706", at_pickup: "#d97706", picked_up: "#dc2626", arrived: "#16a34a" };
  function esc(s) { return String(s == null ? "" : s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function popup(p) {
    var rows = [];
    Object.keys(p).forEach(function (k) { if (k !== "layer") rows.push(esc(k) + ": " + esc(p[k])); });
    return rows.join("<br>");
  }
  function draw(data) {
    if (layer) map.removeLayer(layer);
    layer = L.geoJSON(data, {
      style: function (f) { return { color: COLORS[f.properties.status] || "#2563eb", weight: 3, opacity: 0.8 }; },
      pointToLayer: function (f, latlng) {
        var p = f.properties;
        if (p.layer === "vehicle") return L.marker(latlng, { icon: L.divIcon({ className: "", html: '<div style="width:12px;height:12px;background:' + (COLORS[p.status] || "#2563eb") + ';border:2px solid #fff"></div>' }) });
        if (p.layer === "facility") return L.marker(latlng, { icon: L.divIcon({ className: "", html: '<div style="font-weight:bold;color:#16a34a">✚</div>' }) });
        if (p.layer === "waiting") return L.circleMarker(latlng, { radius: 5, color: "#6b7280", fillOpacity: 0.6 });
        return L.circleMarker(latlng, { radius: 6, color: "#2563eb", fillOpacity: p.done ? 0.9 : 0.1 });
      },
      onEachFeature: function (f, l) { l.bindPopup(popup(f.properties)); }
    }).addTo(map);
    if (data.features.length) { try { map.fitBounds(layer.getBounds(), { maxZoom: 15 }); } catch (e) { /* empty */ } }
    if (status) status.textContent = data.features.length + " · " + new Date().toLocaleTimeString();
  }
  var fitted = false;
  function load() {
    fetch(cfg.url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (d) { if (fitted) { var c = map.getCenter(), z = map.getZoom(); draw(d); map.setView(c, z); } else { draw(d); fitted = true; } })
      .catch(function (e) { if (status) status.textContent = "⚠ " + e.message; });
  }
  load();
  window.setInterval(function () { if (!document.hidden) load(); }, 30000);
})();
