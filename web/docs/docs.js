// Sealpost API reference: reads /openapi.json and renders every operation
// (grouped by tag) with its parameters, request body, responses and a
// try-it-out form. Everything is built with DOM calls, never by parsing
// HTML strings, so text from the contract cannot become markup.
// Credentials typed into a form live in this page's memory only: they
// are never stored.
(function () {
  'use strict';

  const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
  const MAX_SCHEMA_DEPTH = 8;

  let spec = null;
  // The last credential used, so a user types it once per page load.
  const lastCredential = { scheme: 'apiKey', value: '' };

  // ---------- small DOM helpers ----------

  // el('tag.class', {attr: value}, child...) builds an element; children
  // may be strings (text nodes), nodes, arrays, null or undefined.
  function el(selector, attrs, ...children) {
    const [tag, ...classes] = selector.split('.');
    const node = document.createElement(tag);
    if (classes.length) node.className = classes.join(' ');
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // ---------- a tiny, safe Markdown subset ----------
  // Paragraphs, "- " and "1. " lists, `code` and **bold**. Enough for the
  // contract's descriptions; anything else shows as text.

  function markdown(text) {
    const out = document.createDocumentFragment();
    if (!text) return out;
    const blocks = text.replace(/\r\n/g, '\n').split(/\n\s*\n/);
    for (const block of blocks) {
      const lines = block.split('\n').filter((l) => l.trim() !== '');
      if (!lines.length) continue;
      const bullet = lines.every((l) => /^\s*(-|\*|\d+\.)\s+/.test(l) || /^\s{2,}\S/.test(l));
      if (bullet && /^\s*(-|\*|\d+\.)\s+/.test(lines[0])) {
        const ordered = /^\s*\d+\./.test(lines[0]);
        const list = el(ordered ? 'ol' : 'ul');
        let item = null;
        for (const line of lines) {
          const m = line.match(/^\s*(?:-|\*|\d+\.)\s+(.*)$/);
          if (m) {
            item = el('li');
            list.append(item);
            append(item, inline(m[1]));
          } else if (item) {
            append(item, [' ', inline(line.trim())]);
          }
        }
        out.append(list);
      } else {
        out.append(el('p', {}, inline(lines.map((l) => l.trim()).join(' '))));
      }
    }
    return out;
  }

  function inline(text) {
    const parts = [];
    const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parts.push(text.slice(last, m.index));
      parts.push(m[1] !== undefined ? el('code', { text: m[1] }) : el('strong', { text: m[2] }));
      last = re.lastIndex;
    }
    if (last < text.length) parts.push(text.slice(last));
    return parts;
  }

  // ---------- contract helpers ----------

  // resolve follows a local "#/..." $ref; other refs are left as they are.
  function resolve(obj) {
    let seen = 0;
    while (obj && typeof obj.$ref === 'string' && obj.$ref.startsWith('#/') && seen++ < 20) {
      let target = spec;
      for (const part of obj.$ref.slice(2).split('/')) {
        target = target ? target[part.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined;
      }
      if (!target) break;
      obj = target;
    }
    return obj;
  }

  function refName(obj) {
    if (obj && typeof obj.$ref === 'string') {
      const m = obj.$ref.match(/^#\/components\/schemas\/(.+)$/);
      if (m) return m[1];
    }
    return null;
  }

  function typeOf(schema) {
    if (!schema) return 'any';
    const name = refName(schema);
    if (name) return name;
    let t = schema.type;
    if (Array.isArray(t)) t = t.join(' | ');
    if (t === 'array') {
      return 'array of ' + typeOf(schema.items);
    }
    if (!t && schema.allOf) return 'all of (' + schema.allOf.map(typeOf).join(', ') + ')';
    if (!t && schema.oneOf) return 'one of (' + schema.oneOf.map(typeOf).join(', ') + ')';
    if (!t && schema.anyOf) return 'any of (' + schema.anyOf.map(typeOf).join(', ') + ')';
    return (t || 'any') + (schema.format ? ' (' + schema.format + ')' : '');
  }

  function constraints(schema) {
    const c = [];
    if (!schema) return c;
    if (schema.enum) c.push('one of: ' + schema.enum.map((v) => JSON.stringify(v)).join(', '));
    if (schema.const !== undefined) c.push('= ' + JSON.stringify(schema.const));
    if (schema.minimum !== undefined) c.push('≥ ' + schema.minimum);
    if (schema.maximum !== undefined) c.push('≤ ' + schema.maximum);
    if (schema.minLength !== undefined) c.push('min length ' + schema.minLength);
    if (schema.maxLength !== undefined) c.push('max length ' + schema.maxLength);
    if (schema.pattern) c.push('pattern ' + schema.pattern);
    if (schema.default !== undefined) c.push('default ' + JSON.stringify(schema.default));
    return c;
  }

  function operations() {
    const ops = [];
    for (const [path, item] of Object.entries(spec.paths || {})) {
      const shared = item.parameters || [];
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const params = mergeParams(shared, op.parameters || []);
        ops.push({ path, method, op, params, id: op.operationId || method + ' ' + path });
      }
    }
    return ops;
  }

  // An operation's parameter overrides a path-level one of the same name
  // and location.
  function mergeParams(shared, own) {
    const byKey = new Map();
    for (const p of [...shared, ...own].map(resolve)) byKey.set(p.in + ':' + p.name, p);
    return [...byKey.values()];
  }

  function securityOf(op) {
    return op.security !== undefined ? op.security : spec.security || [];
  }

  function anchor(id) {
    return 'op-' + id.replace(/[^A-Za-z0-9_-]/g, '-');
  }

  // ---------- rendering: schemas ----------

  function schemaTree(schema, depth, seen) {
    depth = depth || 0;
    seen = seen || new Set();
    const name = refName(schema);
    const s = resolve(schema) || {};
    if (depth > MAX_SCHEMA_DEPTH || (name && seen.has(name))) {
      return el('p.muted', {}, name ? el('a', { href: '#schema-' + name, text: name }) : '…');
    }
    const nextSeen = new Set(seen);
    if (name) nextSeen.add(name);

    const list = el('ul.schema');
    const parts = s.allOf || [];
    for (const part of parts) {
      const sub = schemaTree(part, depth + 1, nextSeen);
      list.append(el('li', {}, sub));
    }
    const required = new Set(s.required || []);
    for (const [prop, propSchema] of Object.entries(s.properties || {})) {
      const ps = resolve(propSchema) || {};
      const li = el('li', {},
        el('span.name', { text: prop }), ' ',
        el('span.type', { text: typeOf(propSchema) }), ' ',
        required.has(prop) ? el('span.required', { text: 'required' }) : null, ' ',
        constraints(ps).map((c) => el('span.constraint', { text: c + ' ' })),
        ps.description ? el('div.muted', {}, markdown(ps.description)) : null);
      const nested = nestedSchema(propSchema);
      if (nested) li.append(schemaTree(nested, depth + 1, nextSeen));
      list.append(li);
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      list.append(el('li', {}, el('span.name', { text: '{any name}' }), ' ',
        el('span.type', { text: typeOf(s.additionalProperties) })));
    }
    if (!list.childNodes.length) {
      const c = constraints(s);
      return el('p', {}, el('span.type.mono', { text: typeOf(schema) }), ' ',
        c.map((x) => el('span.constraint.mono', { text: x + ' ' })));
    }
    return list;
  }

  // nestedSchema returns the object schema worth expanding under a
  // property (itself, or its array's items), or null.
  function nestedSchema(schema) {
    const s = resolve(schema) || {};
    if (s.type === 'array' && s.items) {
      const items = resolve(s.items) || {};
      return items.properties || items.allOf ? s.items : null;
    }
    if (s.properties || s.allOf) return schema;
    if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      const ap = resolve(s.additionalProperties) || {};
      if (ap.properties) return s.additionalProperties;
    }
    return null;
  }

  function renderSchemas() {
    const section = clear(document.getElementById('schemas'));
    const schemas = (spec.components && spec.components.schemas) || {};
    if (!Object.keys(schemas).length) return;
    section.append(el('h2', { text: 'Schemas' }));
    for (const name of Object.keys(schemas).sort()) {
      const s = schemas[name];
      section.append(el('details', { id: 'schema-' + name },
        el('summary', {}, el('span.mono', { text: name })),
        s.description ? markdown(s.description) : null,
        schemaTree({ $ref: '#/components/schemas/' + name })));
    }
  }

  // ---------- rendering: intro, security ----------

  function renderIntro() {
    const info = spec.info || {};
    document.getElementById('api-title').textContent = info.title || 'API';
    document.getElementById('api-version').textContent = info.version ? 'v' + info.version : '';
    document.title = (info.title || 'API') + ' reference';
    const intro = clear(document.getElementById('intro'));
    if (info.summary) intro.append(el('p', {}, el('strong', { text: info.summary })));
    intro.append(markdown(info.description));
  }

  function renderSecurity() {
    const section = clear(document.getElementById('security'));
    const schemes = (spec.components && spec.components.securitySchemes) || {};
    if (!Object.keys(schemes).length) return;
    section.append(el('h2', { text: 'Authentication' }));
    for (const [name, raw] of Object.entries(schemes)) {
      const s = resolve(raw);
      let how = s.type;
      if (s.type === 'apiKey') how = 'API key in the ' + s.in + ' ' + s.name;
      if (s.type === 'http') how = 'HTTP ' + s.scheme;
      if (s.type === 'oauth2') how = 'OAuth 2.0: ' + Object.keys(s.flows || {}).join(', ');
      const block = el('details', {}, el('summary', {}, el('span.mono', { text: name }), ' — ', how));
      block.append(markdown(s.description));
      if (s.flows) {
        for (const [flow, f] of Object.entries(s.flows)) {
          const scopes = Object.entries(f.scopes || {});
          block.append(el('p', {}, el('strong', { text: flow }), ' — token URL ', el('code', { text: f.tokenUrl || f.authorizationUrl || '' })));
          if (scopes.length) {
            block.append(el('table', {},
              el('tr', {}, el('th', { text: 'Scope' }), el('th', { text: 'Grants' })),
              scopes.map(([sc, d]) => el('tr', {}, el('td.mono', { text: sc }), el('td', { text: d })))));
          }
        }
      }
      section.append(block);
    }
  }

  // ---------- rendering: navigation and operations ----------

  function groups(ops) {
    const order = (spec.tags || []).map((t) => t.name);
    const byTag = new Map(order.map((n) => [n, []]));
    for (const o of ops) {
      const tag = (o.op.tags && o.op.tags[0]) || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(o);
    }
    return [...byTag.entries()].filter(([, list]) => list.length);
  }

  function methodBadge(method) {
    return el('span.method.method-' + method, { text: method.toUpperCase() });
  }

  function renderNav(grouped) {
    const nav = clear(document.getElementById('nav'));
    for (const [tag, list] of grouped) {
      nav.append(el('h2', { text: tag }));
      nav.append(el('ul', {}, list.map((o) => el('li', {},
        el('a', { href: '#' + anchor(o.id), title: o.op.summary || '' },
          methodBadge(o.method), el('span.path', { text: o.path }))))));
    }
  }

  function renderOperations(grouped) {
    const root = clear(document.getElementById('operations'));
    const tagInfo = new Map((spec.tags || []).map((t) => [t.name, t]));
    for (const [tag, list] of grouped) {
      root.append(el('h2', { id: 'tag-' + tag, text: tag }));
      if (tagInfo.has(tag)) root.append(markdown(tagInfo.get(tag).description));
      for (const o of list) root.append(renderOperation(o));
    }
  }

  function renderOperation(o) {
    const { op } = o;
    const section = el('section.op', { id: anchor(o.id) },
      el('div.op-head', {},
        methodBadge(o.method),
        el('span.path', { text: o.path }),
        el('span.summary', { text: op.summary || '' }),
        op['x-sealpost-scope'] ? el('span.badge', { title: 'Required scope', text: 'scope ' + op['x-sealpost-scope'] }) : null,
        securityOf(op).length === 0 ? el('span.badge', { text: 'no authentication' }) : null,
        op.operationId ? el('span.badge', { title: 'operationId', text: op.operationId }) : null));
    section.append(markdown(op.description));

    if (o.params.length) {
      section.append(el('h4', { text: 'Parameters' }));
      section.append(el('table', {},
        el('tr', {}, ['Name', 'In', 'Type', 'Description'].map((h) => el('th', { text: h }))),
        o.params.map((p) => el('tr', {},
          el('td', {}, el('span.mono', { text: p.name }), p.required ? el('div.required', { text: 'required' }) : null),
          el('td', { text: p.in }),
          el('td', {}, el('span.mono', { text: typeOf(p.schema) }),
            constraints(resolve(p.schema)).map((c) => el('div.muted.mono', { text: c }))),
          el('td', {}, markdown(p.description))))));
    }

    const body = resolve(op.requestBody);
    if (body && body.content) {
      section.append(el('h4', { text: 'Request body' + (body.required ? ' (required)' : '') }));
      section.append(markdown(body.description));
      for (const [type, media] of Object.entries(body.content)) {
        section.append(el('p', {}, el('code', { text: type })), schemaTree(media.schema));
      }
    }

    section.append(el('h4', { text: 'Responses' }));
    for (const [code, raw] of Object.entries(op.responses || {})) {
      const r = resolve(raw) || {};
      const d = el('details', {},
        el('summary', {}, el('span.response-code.code-' + code[0], { text: code }), ' ', r.description || ''));
      for (const [hname, h] of Object.entries(r.headers || {})) {
        const hr = resolve(h) || {};
        d.append(el('p', {}, 'Header ', el('code', { text: hname }), ' ', el('span.muted', { text: hr.description || '' })));
      }
      for (const [type, media] of Object.entries(r.content || {})) {
        d.append(el('p', {}, el('code', { text: type })), schemaTree(media.schema));
      }
      section.append(d);
    }

    section.append(tryForm(o));
    return section;
  }

  // ---------- try it out ----------

  function tryForm(o) {
    const { op } = o;
    const fields = new Map();
    const form = el('form');
    const usable = o.params.filter((p) => ['path', 'query', 'header'].includes(p.in));
    for (const p of usable) {
      const id = anchor(o.id) + '-p-' + p.in + '-' + p.name;
      const s = resolve(p.schema) || {};
      const input = el('input', {
        id,
        name: p.name,
        required: p.required,
        placeholder: s.default !== undefined ? String(s.default) : (s.format || ''),
        autocomplete: 'off',
      });
      fields.set(p, input);
      form.append(el('label', { for: id }, p.name, ' ', el('span.hint', { text: '(' + p.in + (p.required ? ', required' : '') + ')' })), input);
    }

    let bodyInput = null;
    let bodyType = null;
    const body = resolve(op.requestBody);
    if (body && body.content) {
      bodyType = Object.keys(body.content)[0];
      const id = anchor(o.id) + '-body';
      bodyInput = el('textarea', { id, spellcheck: 'false' });
      bodyInput.value = bodyType.includes('json') ? '{\n}' : '';
      form.append(el('label', { for: id }, 'Body ', el('span.hint', { text: '(' + bodyType + ')' })), bodyInput);
    }

    let schemeSelect = null;
    let secretInput = null;
    if (securityOf(op).length) {
      const sid = anchor(o.id) + '-scheme';
      const vid = anchor(o.id) + '-secret';
      schemeSelect = el('select', { id: sid },
        el('option', { value: 'apiKey', text: 'X-API-Key (client_id:client_secret)' }),
        el('option', { value: 'bearer', text: 'Bearer token' }),
        el('option', { value: 'none', text: 'No credential' }));
      schemeSelect.value = lastCredential.scheme;
      secretInput = el('input', { id: vid, type: 'password', autocomplete: 'off', placeholder: 'kept in this page only' });
      secretInput.value = lastCredential.value;
      form.append(el('div.row', {},
        el('div', {}, el('label', { for: sid, text: 'Credential' }), schemeSelect),
        el('div', {}, el('label', { for: vid, text: 'Value' }), secretInput)));
    }

    const button = el('button', { type: 'submit', text: 'Send ' + o.method.toUpperCase() });
    const result = el('div.result', { 'aria-live': 'polite' });
    form.append(button, result);

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (schemeSelect) {
        lastCredential.scheme = schemeSelect.value;
        lastCredential.value = secretInput.value;
      }
      button.disabled = true;
      try {
        await send(o, fields, bodyInput, bodyType, schemeSelect, secretInput, result);
      } finally {
        button.disabled = false;
      }
    });

    return el('details.try', {}, el('summary', { text: 'Try it' }), form);
  }

  function buildRequest(o, fields, bodyInput, bodyType, schemeSelect, secretInput) {
    let path = o.path;
    const query = new URLSearchParams();
    const headers = new Headers({ Accept: 'application/json, application/problem+json' });
    for (const [p, input] of fields) {
      const v = input.value;
      if (v === '') continue;
      if (p.in === 'path') path = path.replace('{' + p.name + '}', encodeURIComponent(v));
      else if (p.in === 'query') query.append(p.name, v);
      else if (p.in === 'header') headers.set(p.name, v);
    }
    if (schemeSelect && secretInput.value !== '') {
      if (schemeSelect.value === 'apiKey') headers.set('X-API-Key', secretInput.value);
      if (schemeSelect.value === 'bearer') headers.set('Authorization', 'Bearer ' + secretInput.value);
    }
    const init = { method: o.method.toUpperCase(), headers, credentials: 'omit', cache: 'no-store' };
    if (bodyInput && !['GET', 'HEAD'].includes(init.method)) {
      init.body = bodyInput.value;
      headers.set('Content-Type', bodyType);
    }
    const qs = query.toString();
    return { url: path + (qs ? '?' + qs : ''), init };
  }

  async function send(o, fields, bodyInput, bodyType, schemeSelect, secretInput, result) {
    clear(result);
    const { url, init } = buildRequest(o, fields, bodyInput, bodyType, schemeSelect, secretInput);
    const started = performance.now();
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      result.append(el('p.error', { text: 'Request failed: ' + err.message }));
      return;
    }
    const ms = Math.round(performance.now() - started);
    const text = await res.text();
    let shown = text;
    try {
      shown = JSON.stringify(JSON.parse(text), null, 2);
    } catch (_) {
      // not JSON: show as received
    }
    const headerLines = [];
    res.headers.forEach((v, k) => headerLines.push(k + ': ' + v));
    result.append(
      el('p', {}, el('span.status.code-' + String(res.status)[0], { text: res.status + ' ' + res.statusText }),
        el('span.muted', { text: '  ' + init.method + ' ' + url + ' · ' + ms + ' ms' })),
      el('h4', { text: 'Response headers' }),
      el('pre', { text: headerLines.sort().join('\n') }),
      el('h4', { text: 'Response body' }),
      el('pre', { text: shown || '(empty)' }));
  }

  // ---------- start ----------

  async function load() {
    try {
      const res = await fetch('/openapi.json', { headers: { Accept: 'application/json' }, cache: 'no-cache' });
      if (!res.ok) throw new Error('GET /openapi.json answered ' + res.status);
      spec = await res.json();
    } catch (err) {
      const box = document.getElementById('load-error');
      box.textContent = 'Could not load the API contract: ' + err.message;
      box.hidden = false;
      clear(document.getElementById('nav'));
      return;
    }
    const grouped = groups(operations());
    renderIntro();
    renderNav(grouped);
    renderSecurity();
    renderOperations(grouped);
    renderSchemas();
    if (location.hash) {
      const target = document.getElementById(location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  document.addEventListener('DOMContentLoaded', load);
})();
