/* Jingkong base map: the district's own polygons (no internet tiles), choropleth by population density,
   drill-down from district to grid, breadcrumb, side panel. Data: /api/v1/geo (scoped to the user's region). */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("map-config").textContent);
  var T = JSON.parse(document.getElementById("map-i18n").textContent);
  var COLORS = ["#fef0d9", "#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000"];
  var NO_DATA = "#d9dde3";
  var LABEL_LIMIT = 120;
  var BUILDING_LIMIT = 1000;

  var numberFmt = new Intl.NumberFormat(cfg.language || undefined, { maximumFractionDigits: 0 });
  var decimalFmt = new Intl.NumberFormat(cfg.language || undefined, { maximumFractionDigits: 2 });
  var timeFmt = new Intl.DateTimeFormat(cfg.language || undefined, {
    timeZone: cfg.time_zone || "Asia/Shanghai", dateStyle: "medium", timeStyle: "short"
  });

  var map = L.map("map", { zoomSnap: 0.25, attributionControl: true, minZoom: 8, maxZoom: 19 });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(T.attribution);
  map.setView([29.9, 121.85], 11);

  var state = { focus: null, mode: "children", breaks: [], requestId: 0 };
  var regionLayer = null, outlineLayer = null, buildingLayer = null;
  var labelLayer = L.layerGroup().addTo(map);

  var statusEl = document.getElementById("map-status");
  function setStatus(text, isError) {
    if (!statusEl) return;
    statusEl.textContent = text || "";
    statusEl.className = isError ? "error" : "muted";
  }

  function api(path, params) {
    var url = cfg.api + path;
    if (params) {
      var q = Object.keys(params).filter(function (k) { return params[k] !== "" && params[k] != null; })
        .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
      if (q) url += "?" + q;
    }
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error(r.status + " " + url);
      return r.json();
    });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text != null) node.textContent = text;
    return node;
  }

  // ---- choropleth -------------------------------------------------------------------------------------------
  function computeBreaks(values) {
    var v = values.filter(function (x) { return x != null && x > 0; }).sort(function (a, b) { return a - b; });
    if (!v.length) return [];
    var out = [];
    for (var i = 1; i < COLORS.length; i++) {
      var b = v[Math.min(v.length - 1, Math.floor((i * v.length) / COLORS.length))];
      if (!out.length || b > out[out.length - 1]) out.push(b);
    }
    return out;
  }
  function colour(density) {
    if (density == null || !state.breaks.length) return NO_DATA;
    for (var i = 0; i < state.breaks.length; i++) if (density < state.breaks[i]) return COLORS[i];
    return COLORS[Math.min(state.breaks.length, COLORS.length - 1)];
  }

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () { this._div = L.DomUtil.create("div", "map-legend"); return this._div; };
  legend.update = function () {
    var div = this._div; div.innerHTML = "";
    div.appendChild(el("strong", {}, T.legend_title));
    var list = el("ul");
    var b = state.breaks;
    for (var i = 0; i <= b.length && b.length; i++) {
      var lo = i === 0 ? 0 : b[i - 1];
      var label = i < b.length ? numberFmt.format(lo) + " – " + numberFmt.format(b[i]) : "≥ " + numberFmt.format(lo);
      var li = el("li"); var sw = el("span", { "class": "swatch" }); sw.style.background = COLORS[Math.min(i, COLORS.length - 1)];
      li.appendChild(sw); li.appendChild(document.createTextNode(label)); list.appendChild(li);
    }
    var nd = el("li"); var s = el("span", { "class": "swatch" }); s.style.background = NO_DATA;
    nd.appendChild(s); nd.appendChild(document.createTextNode(T.no_data)); list.appendChild(nd);
    div.appendChild(list);
  };
  legend.addTo(map);

  // ---- layer switcher (drill-down / streets / communities / grids) ----------------------------------------------
  var switcher = L.control({ position: "topright" });
  switcher.onAdd = function () {
    var div = L.DomUtil.create("div", "map-layers leaflet-bar");
    L.DomEvent.disableClickPropagation(div);
    div.appendChild(el("strong", {}, T.layer_title));
    ["children", "street", "community", "grid"].forEach(function (mode) {
      var label = el("label");
      var input = el("input", { type: "radio", name: "map-layer", value: mode });
      if (mode === state.mode) input.checked = true;
      input.addEventListener("change", function () { state.mode = mode; refreshLayer(); });
      label.appendChild(input); label.appendChild(document.createTextNode(" " + T.layers[mode]));
      div.appendChild(label);
    });
    return div;
  };
  switcher.addTo(map);

  function drawRegions(collection) {
    if (regionLayer) map.removeLayer(regionLayer);
    labelLayer.clearLayers();
    var features = collection.features || [];
    state.breaks = computeBreaks(features.map(function (f) { return f.properties.density; }));
    legend.update();
    var labels = features.length <= LABEL_LIMIT;
    regionLayer = L.geoJSON(collection, {
      style: function (f) {
        return { color: "#33475b", weight: f.properties.level === "grid" ? 0.8 : 1.5, fillOpacity: 0.7,
                 fillColor: colour(f.properties.density) };
      },
      onEachFeature: function (f, layer) {
        var p = f.properties;
        layer.bindTooltip(p.name + " · " + T.population + " " + numberFmt.format(p.population), { sticky: true });
        if (labels && p.center) {  // at the stored label point (inside the polygon), not Leaflet's ring centre
          L.tooltip({ permanent: true, direction: "center", className: "region-label", interactive: false })
            .setLatLng([p.center[1], p.center[0]]).setContent(p.name).addTo(labelLayer);
        }
        layer.on("click", function () { select(p.code); });
        layer.on("mouseover", function () { layer.setStyle({ weight: 3 }); });
        layer.on("mouseout", function () { regionLayer.resetStyle(layer); });
      }
    }).addTo(map);
    if (outlineLayer) outlineLayer.bringToFront();
  }

  function refreshLayer() {
    var id = ++state.requestId;
    var req;
    if (state.mode === "children") {
      if (!state.focus) return;
      req = state.focus.children.length
        ? api("/regions/" + encodeURIComponent(state.focus.id) + "/children")
        : Promise.resolve({ type: "FeatureCollection", features: [state.focus] });
    } else {
      var params = { level: state.mode };
      if (state.mode === "grid") {
        var b = map.getBounds();
        params.bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map(function (x) { return x.toFixed(5); }).join(",");
      }
      req = api("/regions", params);
    }
    setStatus(T.loading);
    return req.then(function (fc) {
      if (id !== state.requestId) return;
      drawRegions(fc);
      setStatus(T.select_hint);
    }).catch(function () { setStatus(T.load_error, true); });
  }
  map.on("moveend", function () { if (state.mode === "grid") refreshLayer(); });

  // ---- buildings at grid level ----------------------------------------------------------------------------------
  function drawBuildings(region) {
    if (buildingLayer) { map.removeLayer(buildingLayer); buildingLayer = null; }
    if (region.properties.level !== "grid") return;
    api("/regions/" + encodeURIComponent(region.id) + "/buildings", { page_size: BUILDING_LIMIT }).then(function (page) {
      if (!state.focus || state.focus.id !== region.id) return;
      buildingLayer = L.markerClusterGroup ? L.markerClusterGroup({ showCoverageOnHover: false }) : L.layerGroup();
      page.items.forEach(function (b) {
        L.circleMarker([b.lat, b.lon], { radius: 5, color: "#0f2942", weight: 1, fillColor: "#4aa3df", fillOpacity: 0.9 })
          .bindTooltip((b.address || b.code) + " · " + T.households + " " + numberFmt.format(b.households))
          .addTo(buildingLayer);
      });
      buildingLayer.addTo(map);
      if (page.count > page.items.length) setStatus(T.too_many_buildings.replace("%(n)s", numberFmt.format(page.items.length)));
    }).catch(function () { setStatus(T.load_error, true); });
  }

  // ---- panel and breadcrumb ---------------------------------------------------------------------------------------
  function row(dl, label, value) { dl.appendChild(el("dt", {}, label)); dl.appendChild(el("dd", {}, value)); }

  function renderPanel(detail) {
    var p = detail.properties;
    var box = document.getElementById("region-detail");
    box.innerHTML = "";
    box.appendChild(el("h1", {}, p.name));
    var dl = el("dl", { "class": "facts" });
    row(dl, T.code, p.code);
    row(dl, T.level, T.levels[p.level] || p.level);
    row(dl, T.population, numberFmt.format(p.population));
    row(dl, T.households, numberFmt.format(p.households));
    row(dl, T.buildings, numberFmt.format(p.buildings));
    if (p.area_km2 != null) row(dl, T.area, decimalFmt.format(p.area_km2));
    if (p.density != null) row(dl, T.density, numberFmt.format(p.density));
    row(dl, T.counts_updated, detail.counts_updated_at ? timeFmt.format(new Date(detail.counts_updated_at)) : T.never);
    box.appendChild(dl);
    var synthetic = p.synthetic || detail.children.some(function (c) { return c.synthetic; });
    if (synthetic && !document.getElementById("synthetic-note")) box.appendChild(el("p", { "class": "synthetic-note", role: "note" }, T.synthetic_note));
    statusEl = el("p", { "class": "muted", id: "map-status" }, "");
    box.appendChild(statusEl);

    var list = document.getElementById("children-list");
    list.innerHTML = "";
    if (!detail.children.length) list.appendChild(el("li", { "class": "muted" }, T.no_children));
    detail.children.forEach(function (c) {
      var li = el("li");
      var a = el("a", { href: "#" + c.code }, c.name);
      a.addEventListener("click", function (ev) { ev.preventDefault(); select(c.code); });
      li.appendChild(a);
      li.appendChild(el("span", { "class": "count" }, numberFmt.format(c.population)));
      list.appendChild(li);
    });
  }

  function renderBreadcrumb(detail) {
    var nav = document.getElementById("breadcrumb");
    nav.innerHTML = "";
    detail.ancestors.forEach(function (a) {
      var node;
      if (a.in_scope) {
        node = el("a", { href: "#" + a.code }, a.name);
        node.addEventListener("click", function (ev) { ev.preventDefault(); select(a.code); });
      } else {
        node = el("span", { "class": "context", title: a.code }, a.name);  // context only, outside the user's scope
      }
      nav.appendChild(node);
      nav.appendChild(el("span", { "class": "sep", "aria-hidden": "true" }, "›"));
    });
    nav.appendChild(el("strong", {}, detail.properties.name));
  }

  function select(code) {
    setStatus(T.loading);
    return api("/regions/" + encodeURIComponent(code)).then(function (detail) {
      state.focus = detail;
      renderPanel(detail);
      renderBreadcrumb(detail);
      if (outlineLayer) map.removeLayer(outlineLayer);
      if (detail.geometry) {
        outlineLayer = L.geoJSON(detail, { interactive: false, style: { color: "#0f2942", weight: 3, fill: false } }).addTo(map);
      }
      var bb = detail.properties.bbox;
      if (bb) map.fitBounds([[bb[1], bb[0]], [bb[3], bb[2]]], { padding: [20, 20] });
      if (history.replaceState) history.replaceState(null, "", "#" + code);
      drawBuildings(detail);
      return refreshLayer();
    }).catch(function () { setStatus(T.load_error, true); });
  }

  window.addEventListener("hashchange", function () {
    var code = location.hash.slice(1);
    if (code && (!state.focus || state.focus.id !== code)) select(code);
  });

  // ---- start: the region in the URL, else the user's own region, else the top of the tree --------------------
  var start = location.hash.slice(1) || cfg.root;
  if (start) {
    select(start).then(function () {
      if (!state.focus && cfg.root && start !== cfg.root) select(cfg.root);  // a stale link outside the user's scope
    });
  } else {
    api("/regions/roots").then(function (fc) {
      if (fc.features.length === 1) return select(fc.features[0].id);
      drawRegions(fc);
      var bounds = regionLayer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds);
      setStatus(T.select_hint);
    }).catch(function () { setStatus(T.load_error, true); });
  }
})();
