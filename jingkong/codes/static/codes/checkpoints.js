/* Checkpoint map: the region's own polygons (no internet tiles) and one marker per checkpoint, coloured by today's
   denials (red), referrals (amber) or neither (green); grey when out of service. */
(function () {
  "use strict";
  var node = document.getElementById("cp-map-config");
  var el = document.getElementById("cp-map");
  if (!node || !el || typeof L === "undefined") return;
  var cfg = JSON.parse(node.textContent);
  var T = cfg.labels || {};
  var map = L.map(el, { zoomSnap: 0.25 });
  var bounds = null;
  (cfg.regions || []).forEach(function (r) {
    var layer = L.geoJSON(r.geometry, { style: { color: "#64748b", weight: 1, fillColor: "#e2e8f0", fillOpacity: 0.35 } })
      .bindTooltip(r.name + " " + r.code).addTo(map);
    bounds = bounds ? bounds.extend(layer.getBounds()) : layer.getBounds();
  });
  (cfg.checkpoints || []).forEach(function (c) {
    var colour = !c.active ? "#9ca3af" : (c.denied ? "#b91c1c" : (c.referred ? "#b45309" : "#15803d"));
    var m = L.circleMarker([c.lat, c.lon], { radius: 8, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 1 });
    var text = document.createElement("div");
    var a = document.createElement("a");
    a.href = c.url;
    a.textContent = c.code + " " + c.name;
    text.appendChild(a);
    var p = document.createElement("div");
    p.textContent = c.kind + " · " + (T.crossings || "") + " " + c.total + " · " + (T.denied || "") + " " + c.denied +
      " · " + (T.referred || "") + " " + c.referred + (c.active ? "" : " · " + (T.inactive || ""));
    text.appendChild(p);
    m.bindPopup(text).addTo(map);
    var b = L.latLngBounds([[c.lat, c.lon], [c.lat, c.lon]]);
    bounds = bounds ? bounds.extend(b) : b;
  });
  if (bounds) { map.fitBounds(bounds.pad(0.05)); } else { map.setView([29.9, 121.8], 11); }
})();
