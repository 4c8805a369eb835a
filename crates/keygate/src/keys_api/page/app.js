// keygate — the self-service "API Keys" page.
//
// Plain JavaScript, no framework, no build step. It runs under a CSP without
// 'unsafe-inline', so: no inline handlers, no style attributes, and every piece of
// user-supplied text (key names above all) goes into the DOM through textContent.
// Nothing here ever parses HTML.
(function () {
  'use strict';

  var API = (document.body.dataset.apiBase || '/api/v1/keys').replace(/\/+$/, '');
  var STORAGE_KEY = 'keygate.managementKey';
  var PAGE_SIZE = 50;
  var USAGE_DAYS = 30;
  var USAGE_CONCURRENCY = 6;
  var DAY_MS = 86400000;
  var SVG_NS = 'http://www.w3.org/2000/svg';

  var MESSAGES = {
    notAccepted: 'That key was not accepted',
    cannotManage: 'This key cannot manage keys (it needs keys:manage)',
    unavailable: 'The key service is unavailable, try again shortly',
    offline: 'Could not reach the key service. Check your connection and try again.',
    sessionLost: 'Your management key is no longer accepted. Enter a key to continue.',
    revoke: 'Revoke: the key stops working at once; it stays listed for audit.',
    del: 'Delete: the key stops working and is removed from this list; its audit trail is kept.'
  };

  // ---------------------------------------------------------------- state

  var state = {
    managerKey: null,
    manager: null,
    session: 0, // bumped on every sign-in/out; late answers of an old session are dropped
    filter: '',
    cursor: null,
    listLoaded: false,
    listGen: 0,
    keys: new Map(), // id -> Key, only the ones listed
    rows: new Map(), // id -> <tr>
    usage: new Map(), // id -> [{day, requests, refused}] | null (failed)
    usagePending: new Set(),
    usageQueue: [],
    usageActive: 0,
    detailId: null,
    detailKey: null,
    detailUsage: null
  };

  // ---------------------------------------------------------------- DOM helpers

  function $(id) {
    return document.getElementById(id);
  }

  // el('a', {className: 'x', href: '#', dataset: {testid: 'y'}}, 'text', child…)
  function el(tag, props) {
    var node = document.createElement(tag);
    applyProps(node, props);
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG_NS, tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, String(attrs[name]));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }

  function applyProps(node, props) {
    if (!props) return;
    Object.keys(props).forEach(function (name) {
      var value = props[name];
      if (value === null || value === undefined || value === false) return;
      if (name === 'className') node.className = value;
      else if (name === 'text') node.textContent = value;
      else if (name === 'dataset') Object.keys(value).forEach(function (k) { node.dataset[k] = value[k]; });
      else if (name === 'on') Object.keys(value).forEach(function (k) { node.addEventListener(k, value[k]); });
      else if (name === 'hidden') node.hidden = true;
      else if (value === true) node.setAttribute(name, '');
      else node.setAttribute(name, String(value));
    });
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else if (typeof child === 'string' || typeof child === 'number') node.appendChild(document.createTextNode(String(child)));
    else node.appendChild(child);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // ---------------------------------------------------------------- formatting

  var numberFmt = new Intl.NumberFormat('en');
  var dateFmt = new Intl.DateTimeFormat('en', { year: 'numeric', month: 'short', day: 'numeric' });
  var fullFmt = new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' });
  var dayFmt = new Intl.DateTimeFormat('en', { month: 'short', day: 'numeric', timeZone: 'UTC' });
  var dayLongFmt = new Intl.DateTimeFormat('en', { weekday: 'short', month: 'short', day: 'numeric', timeZone: 'UTC' });
  var relFmt = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

  function parseTime(iso) {
    if (!iso) return null;
    var t = Date.parse(iso);
    return isNaN(t) ? null : t;
  }

  function relative(iso) {
    var t = parseTime(iso);
    if (t === null) return '';
    var seconds = (t - Date.now()) / 1000;
    var abs = Math.abs(seconds);
    if (abs < 45) return 'just now';
    var units = [
      ['year', 31536000], ['month', 2592000], ['week', 604800],
      ['day', 86400], ['hour', 3600], ['minute', 60]
    ];
    for (var i = 0; i < units.length; i++) {
      if (abs >= units[i][1] || units[i][0] === 'minute') {
        return relFmt.format(Math.round(seconds / units[i][1]), units[i][0]);
      }
    }
    return '';
  }

  function timeEl(iso, text, className) {
    var t = parseTime(iso);
    return el('time', {
      datetime: iso,
      title: t === null ? null : fullFmt.format(t),
      className: className || null
    }, text);
  }

  function dateText(iso) {
    var t = parseTime(iso);
    return t === null ? '' : dateFmt.format(t);
  }

  function dayLabel(day, long) {
    var t = Date.parse(day + 'T00:00:00Z');
    if (isNaN(t)) return day;
    return (long ? dayLongFmt : dayFmt).format(t);
  }

  function plural(n, one, many) {
    return numberFmt.format(n) + ' ' + (n === 1 ? one : many);
  }

  function statusLabel(status) {
    return { active: 'Active', expired: 'Expired', revoked: 'Revoked' }[status] || String(status || 'Unknown');
  }

  function ident(key) {
    return (key.prefix ? key.prefix + '_' : '') + key.id;
  }

  function quoted(name) {
    return '\u201c' + name + '\u201d';
  }

  function humanize(action) {
    var s = String(action || '').replace(/[_.]+/g, ' ').trim();
    return s ? s.charAt(0).toUpperCase() + s.slice(1) : 'Event';
  }

  // RFC 3339 without milliseconds.
  function isoSeconds(ms) {
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // The end of a chosen calendar day, in the viewer's time zone.
  function endOfLocalDay(dateValue) {
    var t = Date.parse(dateValue + 'T23:59:59');
    return isNaN(t) ? null : isoSeconds(t);
  }

  function daysFromNow(n) {
    return isoSeconds(Date.now() + n * DAY_MS);
  }

  function localDateValue(iso) {
    var t = parseTime(iso);
    if (t === null) return '';
    var d = new Date(t);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function tomorrowValue() {
    return localDateValue(new Date(Date.now() + DAY_MS).toISOString());
  }

  // ---------------------------------------------------------------- API

  function ApiError(status, body, retryAfter) {
    var error = (body && body.error) || {};
    var details = error.details || {};
    this.name = 'ApiError';
    this.status = status;
    this.code = error.code || '';
    this.reason = details.reason || '';
    this.field = details.field || '';
    this.scopes = Array.isArray(details.scopes) ? details.scopes : [];
    this.message = error.message || '';
    this.retryAfter = retryAfter;
  }
  ApiError.prototype = Object.create(Error.prototype);
  ApiError.prototype.constructor = ApiError;

  function api(method, path, body) {
    var headers = { 'Accept': 'application/json', 'X-Api-Key': state.managerKey || '' };
    var init = { method: method, headers: headers, cache: 'no-store', credentials: 'same-origin' };
    // Every state-changing request is JSON: applications with cookie sessions refuse others.
    if (method !== 'GET') headers['Content-Type'] = 'application/json';
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(API + path, init).then(function (res) {
      if (res.status === 204) return null;
      return res.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        if (!res.ok) throw new ApiError(res.status, data, res.headers.get('Retry-After'));
        return data;
      });
    }, function () {
      throw new ApiError(0, null, null);
    });
  }

  function keyPath(id, rest) {
    if (!/^[0-9a-f]{16}$/.test(id)) throw new Error('not a key id');
    return '/' + id + (rest || '');
  }

  function describeError(err) {
    if (!(err instanceof ApiError)) return 'Something went wrong: ' + (err && err.message ? err.message : String(err));
    switch (err.status) {
      case 0: return MESSAGES.offline;
      case 401: return MESSAGES.notAccepted;
      case 503: return MESSAGES.unavailable;
      case 429: {
        var wait = parseInt(err.retryAfter, 10);
        return 'Too many requests. ' + (wait > 0 ? 'Try again in ' + plural(wait, 'second', 'seconds') + '.' : 'Try again shortly.');
      }
      case 404: return 'That key no longer exists. It may have been deleted.';
      case 409:
        if (err.reason === 'already_rotated') return 'This key has already been rotated. Rotate its replacement instead.';
        if (err.reason === 'key_not_active') return 'Only an active key can be rotated.';
        break;
      case 403:
        if (err.reason === 'insufficient_scope') return MESSAGES.cannotManage;
        if (err.reason === 'scope_not_grantable') {
          return 'You cannot grant ' + (err.scopes.length ? err.scopes.join(', ') : 'these scopes') + ': your own key does not hold them.';
        }
        break;
      default:
        if (err.status >= 500) return 'The key service failed (' + err.status + '). Try again shortly.';
    }
    return err.message || 'The request failed (' + err.status + ').';
  }

  // For everything after sign-in: a 401 means our management key died (revoked,
  // expired): forget it and ask again instead of failing every call.
  function handleError(err) {
    if (err instanceof ApiError && err.status === 401 && state.manager) {
      signOut(MESSAGES.sessionLost);
      return;
    }
    showAlert(describeError(err));
  }

  // ---------------------------------------------------------------- banner and notices

  var noticeTimer = 0;

  function showAlert(message) {
    $('alert').textContent = message;
    $('alert-bar').classList.remove('is-empty');
    clearNotice();
  }

  function clearAlert() {
    $('alert').textContent = '';
    $('alert-bar').classList.add('is-empty');
  }

  function notify(message) {
    var n = $('notice');
    n.textContent = message;
    n.classList.add('is-shown');
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(clearNotice, 5000);
  }

  function clearNotice() {
    clearTimeout(noticeTimer);
    $('notice').textContent = '';
    $('notice').classList.remove('is-shown');
  }

  // ---------------------------------------------------------------- field errors

  // Shows (or clears, with an empty message) the error under one form field.
  function setFieldError(id, message, target) {
    var errorEl = $(id + '-error');
    var input = target || $(id);
    if (!errorEl) return false;
    if (message) {
      errorEl.textContent = message;
      errorEl.hidden = false;
      if (input) input.setAttribute('aria-invalid', 'true');
    } else {
      errorEl.textContent = '';
      errorEl.hidden = true;
      if (input) input.removeAttribute('aria-invalid');
    }
    return true;
  }

  // ---------------------------------------------------------------- sign in / out

  function showSignIn(prefill) {
    $('app-view').hidden = true;
    $('session').hidden = true;
    $('signin-view').hidden = false;
    var input = $('manager-key');
    input.value = prefill || '';
    input.focus();
  }

  function signIn(key, remembered) {
    var session = ++state.session;
    state.managerKey = key;
    $('signin-submit').disabled = true;
    $('signin-submit').textContent = 'Checking…';
    return api('GET', '/manager').then(function (manager) {
      if (session !== state.session) return;
      try {
        sessionStorage.setItem(STORAGE_KEY, key);
      } catch (e) {
        // Storage refused (privacy mode): the key lives in this page only.
      }
      state.manager = manager || {};
      clearAlert();
      $('manager-key').value = '';
      $('manager-key').removeAttribute('aria-invalid');
      showApp();
    }, function (err) {
      if (session !== state.session) return;
      state.managerKey = null;
      var rejected = err instanceof ApiError && (err.status === 401 || err.status === 403);
      if (rejected) {
        forgetStoredKey();
        showSignIn('');
        $('manager-key').setAttribute('aria-invalid', 'true');
        if (err.status === 401) showAlert(remembered ? MESSAGES.sessionLost : MESSAGES.notAccepted);
        else showAlert(describeError(err));
      } else {
        // Outage or network: keep the key, let the user try again with one click.
        showSignIn(key);
        showAlert(describeError(err));
      }
    }).then(function () {
      $('signin-submit').disabled = false;
      $('signin-submit').textContent = 'Continue';
    });
  }

  function forgetStoredKey() {
    try { sessionStorage.removeItem(STORAGE_KEY); } catch (e) { /* nothing stored */ }
  }

  function signOut(message) {
    state.session++;
    forgetStoredKey();
    state.managerKey = null;
    state.manager = null;
    resetList();
    state.usage.clear();
    state.usageQueue.length = 0;
    state.usagePending.clear();
    state.detailId = null;
    hideNewKey();
    closeCreate(true);
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    clearNotice();
    if (message) showAlert(message);
    else clearAlert();
    showSignIn('');
  }

  function showApp() {
    var m = state.manager;
    var who = [m.owner, m.team ? m.org + ' / ' + m.team : m.org].filter(Boolean).join(' \u00b7 ');
    clear($('session-who'));
    append($('session-who'), [el('span', { className: 'session-label' }, 'Signed in as '), who || 'manager']);
    $('session-who').title = who;
    $('session').hidden = false;
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    buildScopeCheckboxes(Array.isArray(m.scopes) ? m.scopes : []);
    route();
  }

  // ---------------------------------------------------------------- routing (list / detail)

  function route() {
    if (!state.manager) return;
    // Only a well-formed key id: anything else (`..`, `/`) would send the management key to
    // another path of this origin.
    var match = /^#key\/([0-9a-f]{16})$/.exec(location.hash);
    if (match) {
      var id;
      try { id = decodeURIComponent(match[1]); } catch (e) { id = match[1]; }
      // hashchange and popstate can both announce one navigation.
      if (state.detailId === id && !$('detail-view').hidden) return;
      showDetail(id);
    } else {
      if (!state.detailId && !$('list-view').hidden && state.listLoaded) return;
      showList();
    }
  }

  function showList() {
    var cameFrom = state.detailId;
    state.detailId = null;
    state.detailKey = null;
    $('detail-view').hidden = true;
    $('list-view').hidden = false;
    document.title = 'API Keys';
    if (!state.listLoaded) {
      loadList(true);
    } else if (cameFrom) {
      var row = state.rows.get(cameFrom);
      var link = row && row.querySelector('.key-name');
      if (link) link.focus();
    }
  }

  // ---------------------------------------------------------------- the list

  function resetList() {
    state.listGen++;
    state.listLoaded = false;
    state.cursor = null;
    state.keys.clear();
    state.rows.clear();
    clear($('keys-body'));
    $('table-wrap').hidden = true;
    $('empty-state').hidden = true;
    $('load-more').hidden = true;
    $('list-count').textContent = '';
  }

  function loadList(reset) {
    if (reset) resetList();
    var gen = state.listGen;
    var params = new URLSearchParams();
    params.set('limit', String(PAGE_SIZE));
    if (state.filter) params.set('status', state.filter);
    if (!reset && state.cursor) params.set('cursor', state.cursor);
    $('list-loading').hidden = false;
    $('load-more').disabled = true;
    return api('GET', '?' + params.toString()).then(function (page) {
      if (gen !== state.listGen) return;
      state.listLoaded = true;
      var keys = (page && Array.isArray(page.data)) ? page.data : [];
      keys.forEach(function (key) {
        if (state.rows.has(key.id)) return;
        state.keys.set(key.id, key);
        var row = buildRow(key);
        state.rows.set(key.id, row);
        $('keys-body').appendChild(row);
        requestUsage(key.id);
      });
      state.cursor = (page && page.next_cursor) || null;
    }, function (err) {
      if (gen !== state.listGen) return;
      handleError(err);
    }).then(function () {
      if (gen !== state.listGen) return;
      $('list-loading').hidden = true;
      $('load-more').disabled = false;
      updateListChrome();
    });
  }

  function matchesFilter(key) {
    return !state.filter || key.status === state.filter;
  }

  function updateListChrome() {
    var count = state.rows.size;
    var loaded = state.listLoaded;
    $('table-wrap').hidden = count === 0;
    $('empty-state').hidden = !(loaded && count === 0);
    $('load-more').hidden = !state.cursor;
    if (loaded && count === 0) {
      if (state.filter) {
        $('empty-title').textContent = 'No ' + state.filter + ' keys';
        $('empty-text').textContent = 'Choose \u201cAll keys\u201d to see every key, or create a new one.';
      } else {
        $('empty-title').textContent = 'No API keys yet';
        $('empty-text').textContent = 'Create a key to let a program call the API.';
      }
    }
    if (!loaded || count === 0) {
      $('list-count').textContent = '';
    } else {
      $('list-count').textContent = 'Showing ' + plural(count, 'key', 'keys') + (state.cursor ? ', more available' : '');
    }
  }

  // Adds a key at the top (new) or refreshes its row in place.
  function upsertKey(key, atTop) {
    // Before the list's first page arrives there is nothing to patch: it will come fresh.
    if (!key || !key.id || !state.listLoaded) return;
    var old = state.rows.get(key.id);
    if (!matchesFilter(key)) {
      if (old) removeRow(key.id);
      return;
    }
    state.keys.set(key.id, key);
    var row = buildRow(key);
    state.rows.set(key.id, row);
    if (old) {
      var hadFocus = old.contains(document.activeElement) ? document.activeElement.dataset.testid : null;
      old.replaceWith(row);
      if (hadFocus) {
        var again = row.querySelector('[data-testid="' + hadFocus + '"]') || row.querySelector('.key-name');
        if (again) again.focus();
      }
    } else if (atTop) {
      row.classList.add('is-new');
      $('keys-body').insertBefore(row, $('keys-body').firstChild);
    } else {
      $('keys-body').appendChild(row);
    }
    fillUsage(key.id);
    requestUsage(key.id);
    updateListChrome();
  }

  function removeRow(id) {
    var row = state.rows.get(id);
    if (row) row.remove();
    state.rows.delete(id);
    state.keys.delete(id);
    updateListChrome();
  }

  function buildRow(key) {
    var row = el('tr', { className: 'key-row status-' + key.status, dataset: { testid: 'key-row', keyId: key.id } });

    // Name and identifier.
    row.appendChild(el('td', { className: 'cell-name', dataset: { label: 'Name' } },
      el('a', { className: 'key-name', href: '#key/' + encodeURIComponent(key.id), dataset: { testid: 'key-name' } }, key.name || '(unnamed)'),
      el('div', { className: 'mono sub key-ident', title: ident(key) + ' (tokens of this key start with this)' }, ident(key))
    ));

    // Status.
    var statusCell = el('td', { className: 'cell-status', dataset: { label: 'Status' } },
      el('span', { className: 'badge badge-' + key.status, dataset: { testid: 'key-status' } }, statusLabel(key.status)));
    if (key.status === 'active' && key.rotated_to) {
      statusCell.appendChild(el('div', { className: 'sub' },
        'Rotated', key.expires_at ? ', ends ' + relative(key.expires_at) : ''));
    } else if (key.status === 'revoked' && key.revoked_at) {
      statusCell.appendChild(el('div', { className: 'sub' }, timeEl(key.revoked_at, relative(key.revoked_at))));
    }
    row.appendChild(statusCell);

    // Scopes.
    row.appendChild(el('td', { className: 'cell-scopes', dataset: { label: 'Scopes' } }, scopeChips(key.scopes || [], 4)));

    // Created.
    row.appendChild(el('td', { className: 'cell-date', dataset: { label: 'Created' } },
      key.created_at ? timeEl(key.created_at, dateText(key.created_at)) : '\u2014'));

    // Expires.
    var expires = el('td', { className: 'cell-date', dataset: { label: 'Expires' } });
    if (key.expires_at) {
      expires.appendChild(timeEl(key.expires_at, dateText(key.expires_at)));
      expires.appendChild(el('div', { className: 'sub' }, relative(key.expires_at)));
    } else {
      expires.appendChild(el('span', { className: 'muted' }, 'Never'));
    }
    row.appendChild(expires);

    // Last used, and the mark on keys no one has used for 30 days.
    var lastUsed = el('td', { className: 'cell-used', dataset: { label: 'Last used' } });
    if (key.last_used_at) lastUsed.appendChild(timeEl(key.last_used_at, relative(key.last_used_at)));
    else lastUsed.appendChild(el('span', { className: 'muted' }, 'never'));
    var unused = unusedLabel(key);
    if (unused) {
      lastUsed.appendChild(el('div', null, el('span', {
        className: 'unused',
        dataset: { testid: 'key-unused' },
        title: 'No request in the last 30 days. If nothing needs this key, revoke it.'
      }, unused)));
    }
    row.appendChild(lastUsed);

    // Usage sparkline (filled when /usage answers).
    var usageCell = el('td', { className: 'cell-usage', dataset: { label: 'Usage, 30 days' } },
      el('div', { className: 'spark-slot' }, el('span', { className: 'spark-loading', role: 'img', 'aria-label': 'Loading usage' })),
      el('div', { className: 'sub usage-total' },
        key.usage ? plural(key.usage.requests_30d || 0, 'request', 'requests') : ''),
      key.rate_limit ? el('div', { className: 'sub', title: 'Rate limit' }, 'Limit ' + key.rate_limit) : null
    );
    row.appendChild(usageCell);

    row.appendChild(el('td', { className: 'cell-actions', dataset: { label: 'Actions' } }, actionButtons(key, 'key')));
    return row;
  }

  function scopeChips(scopes, max) {
    var list = el('ul', { className: 'chips', 'aria-label': 'Scopes' });
    var shown = max && scopes.length > max + 1 ? scopes.slice(0, max) : scopes;
    shown.forEach(function (s) { list.appendChild(el('li', { className: 'chip' }, s)); });
    if (shown.length < scopes.length) {
      var rest = scopes.slice(shown.length);
      list.appendChild(el('li', { className: 'chip chip-more', title: rest.join(', ') }, '+' + rest.length + ' more'));
    }
    return list;
  }

  function unusedLabel(key) {
    var cutoff = Date.now() - USAGE_DAYS * DAY_MS;
    var lastUsed = parseTime(key.last_used_at);
    if (lastUsed !== null && lastUsed >= cutoff) return null;
    if (key.usage && key.usage.requests_30d > 0) return null;
    if (!key.usage) {
      var series = state.usage.get(key.id);
      if (!series) return lastUsed === null ? 'Never used' : 'Unused for 30 days';
      var total = series.reduce(function (n, d) { return n + (d.requests || 0); }, 0);
      if (total > 0) return null;
    }
    return lastUsed === null ? 'Never used' : 'Unused for 30 days';
  }

  // Buttons for one key; `prefix` names the test ids ('key-revoke', 'detail-revoke').
  function actionButtons(key, prefix) {
    var wrap = el('div', { className: 'row-actions' });
    var name = key.name || key.id;
    if (key.status === 'active' && !key.rotated_to) {
      wrap.appendChild(el('button', {
        type: 'button', className: 'btn btn-small', dataset: { testid: prefix + '-rotate' },
        'aria-label': 'Rotate ' + name, on: { click: function () { rotateKey(key); } }
      }, 'Rotate'));
    }
    if (key.status !== 'revoked') {
      wrap.appendChild(el('button', {
        type: 'button', className: 'btn btn-small', dataset: { testid: prefix + '-revoke' },
        'aria-label': 'Revoke ' + name, on: { click: function () { revokeKey(key); } }
      }, 'Revoke'));
    }
    wrap.appendChild(el('button', {
      type: 'button', className: 'btn btn-small btn-danger-quiet', dataset: { testid: prefix + '-delete' },
      'aria-label': 'Delete ' + name, on: { click: function () { deleteKey(key); } }
    }, 'Delete'));
    return wrap;
  }

  // ---------------------------------------------------------------- usage (sparklines)

  function requestUsage(id) {
    if (state.usage.has(id) || state.usagePending.has(id)) return;
    state.usagePending.add(id);
    state.usageQueue.push(id);
    pumpUsage();
  }

  function pumpUsage() {
    while (state.usageActive < USAGE_CONCURRENCY && state.usageQueue.length) {
      fetchUsage(state.usageQueue.shift());
    }
  }

  function fetchUsage(id) {
    var session = state.session;
    state.usageActive++;
    api('GET', keyPath(id, '/usage?days=' + USAGE_DAYS)).then(function (res) {
      if (session !== state.session) return;
      state.usage.set(id, normalizeUsage(res && res.data));
    }, function (err) {
      if (session !== state.session) return;
      state.usage.set(id, null);
      if (err instanceof ApiError && err.status === 401) handleError(err);
    }).then(function () {
      if (session !== state.session) return;
      state.usageActive--;
      state.usagePending.delete(id);
      fillUsage(id);
      pumpUsage();
    });
  }

  // One entry per day, oldest first, exactly USAGE_DAYS long (padded at the old end).
  function normalizeUsage(data) {
    var days = Array.isArray(data) ? data.slice(-USAGE_DAYS) : [];
    days = days.map(function (d) {
      return { day: String(d.day || ''), requests: Math.max(0, +d.requests || 0), refused: Math.max(0, +d.refused || 0) };
    });
    while (days.length < USAGE_DAYS) {
      var first = days.length ? Date.parse(days[0].day + 'T00:00:00Z') : Date.now();
      var prev = isNaN(first) ? '' : new Date(first - DAY_MS).toISOString().slice(0, 10);
      days.unshift({ day: prev, requests: 0, refused: 0 });
    }
    return days;
  }

  function fillUsage(id) {
    var row = state.rows.get(id);
    if (!row || !state.usage.has(id)) return;
    var slot = row.querySelector('.spark-slot');
    var series = state.usage.get(id);
    clear(slot);
    if (!series) {
      slot.appendChild(el('span', { className: 'muted sub', title: 'Usage could not be loaded' }, 'No data'));
      return;
    }
    slot.appendChild(sparkline(series));
    var key = state.keys.get(id);
    if (key && !key.usage) {
      var total = series.reduce(function (n, d) { return n + d.requests; }, 0);
      row.querySelector('.usage-total').textContent = plural(total, 'request', 'requests');
      // Without the key's own counters the mark depends on the series: refresh it.
      var fresh = buildRow(key);
      row.querySelector('.cell-used').replaceWith(fresh.querySelector('.cell-used'));
    }
  }

  function sparkline(series) {
    var width = 104;
    var height = 28;
    var n = series.length;
    var slotW = width / n;
    var barW = Math.max(1, slotW - 1);
    var max = series.reduce(function (m, d) { return Math.max(m, d.requests + d.refused); }, 0);
    var totalReq = series.reduce(function (s, d) { return s + d.requests; }, 0);
    var totalRef = series.reduce(function (s, d) { return s + d.refused; }, 0);
    var label = 'Last ' + n + ' days: ' + plural(totalReq, 'request', 'requests') +
      (totalRef ? ', ' + plural(totalRef, 'refusal', 'refusals') : '');
    var svg = svgEl('svg', {
      class: 'sparkline', width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
      role: 'img', 'aria-label': label, 'data-testid': 'key-sparkline', focusable: 'false'
    });
    svg.appendChild(svgEl('title', null, label));
    svg.appendChild(svgEl('line', { class: 'spark-base', x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5 }));
    series.forEach(function (d, i) {
      var x = i * slotW + (slotW - barW) / 2;
      var g = svgEl('g', { class: 'spark-point' + (d.requests + d.refused === 0 ? ' spark-zero' : '') });
      g.appendChild(svgEl('title', null, dayLabel(d.day, true) + ': ' + plural(d.requests, 'request', 'requests') +
        (d.refused ? ', ' + plural(d.refused, 'refusal', 'refusals') : '')));
      // An invisible full-height target so every day answers a hover.
      g.appendChild(svgEl('rect', { class: 'spark-hit', x: i * slotW, y: 0, width: slotW, height: height }));
      if (max > 0) {
        var hReq = d.requests ? Math.max(2, (d.requests / max) * (height - 2)) : 0;
        var hRef = d.refused ? Math.max(2, (d.refused / max) * (height - 2)) : 0;
        if (hReq) g.appendChild(svgEl('rect', { class: 'spark-req', x: fix(x), y: fix(height - hReq), width: fix(barW), height: fix(hReq), rx: 0.5 }));
        if (hRef) g.appendChild(svgEl('rect', { class: 'spark-ref', x: fix(x), y: fix(height - hReq - hRef), width: fix(barW), height: fix(hRef), rx: 0.5 }));
      }
      svg.appendChild(g);
    });
    return svg;
  }

  function fix(n) {
    return Math.round(n * 100) / 100;
  }

  // ---------------------------------------------------------------- create

  function buildScopeCheckboxes(scopes) {
    var grid = $('create-scopes');
    clear(grid);
    if (!scopes.length) {
      grid.appendChild(el('p', { className: 'muted' }, 'Your management key has no scopes it can grant.'));
      return;
    }
    scopes.slice().sort().forEach(function (scope) {
      var id = 'scope-' + scope.replace(/[^A-Za-z0-9_-]/g, '_') + '-' + grid.childElementCount;
      grid.appendChild(el('div', { className: 'check' },
        el('input', { type: 'checkbox', id: id, name: 'scopes', value: scope, dataset: { testid: 'scope-' + scope } }),
        el('label', { for: id }, el('span', { className: 'mono' }, scope))
      ));
    });
  }

  function openCreate() {
    var panel = $('create-panel');
    panel.hidden = false;
    $('create-open').setAttribute('aria-expanded', 'true');
    if (!$('list-view').hidden) {
      panel.scrollIntoView({ block: 'nearest' });
    }
    $('create-name').focus();
  }

  function closeCreate(reset) {
    $('create-panel').hidden = true;
    $('create-open').setAttribute('aria-expanded', 'false');
    if (reset) {
      $('create-form').reset();
      $('create-expiry-date-wrap').hidden = true;
      clearCreateErrors();
    }
  }

  function clearCreateErrors() {
    setFieldError('create-name', '');
    setFieldError('create-scopes', '', $('create-scopes-fieldset'));
    setFieldError('create-expiry', '', $('create-expiry'));
    setFieldError('create-rate-limit', '');
  }

  var CREATE_FIELDS = {
    name: ['create-name', null, 'Enter a name of 1 to 100 characters.'],
    scopes: ['create-scopes', 'create-scopes-fieldset', 'Choose at least one scope.'],
    expires_at: ['create-expiry', null, 'Choose an expiry in the future.'],
    expires_in: ['create-expiry', null, 'Choose a valid expiry.'],
    rate_limit: ['create-rate-limit', null, 'Write the limit as requests/period, e.g. 1000/1m.']
  };

  function showCreateFieldError(field, message) {
    var spec = CREATE_FIELDS[field];
    if (!spec) return false;
    setFieldError(spec[0], message || spec[2], spec[1] ? $(spec[1]) : null);
    var focusTarget = field === 'scopes' ? $('create-scopes').querySelector('input') : $(spec[0]);
    if (field === 'expires_at' && !$('create-expiry-date-wrap').hidden) focusTarget = $('create-expiry-date');
    if (focusTarget) focusTarget.focus();
    return true;
  }

  function submitCreate(event) {
    event.preventDefault();
    clearAlert();
    clearCreateErrors();
    var name = $('create-name').value.trim();
    var scopes = Array.prototype.map.call(
      $('create-scopes').querySelectorAll('input[type="checkbox"]:checked'),
      function (box) { return box.value; });
    var expiry = $('create-expiry').value;
    var rateLimit = $('create-rate-limit').value.trim();

    var firstBad = null;
    if (!name) { setFieldError('create-name', CREATE_FIELDS.name[2]); firstBad = firstBad || $('create-name'); }
    if (!scopes.length) {
      setFieldError('create-scopes', CREATE_FIELDS.scopes[2], $('create-scopes-fieldset'));
      firstBad = firstBad || $('create-scopes').querySelector('input');
    }
    var body = { name: name, scopes: scopes };
    if (expiry === 'custom') {
      var dateValue = $('create-expiry-date').value;
      var at = dateValue ? endOfLocalDay(dateValue) : null;
      if (!at || Date.parse(at) <= Date.now()) {
        setFieldError('create-expiry', 'Pick a date in the future.', $('create-expiry-date'));
        firstBad = firstBad || $('create-expiry-date');
      } else {
        body.expires_at = at;
      }
    } else if (expiry) {
      body.expires_in = expiry;
    }
    if (rateLimit) body.rate_limit = rateLimit;
    if (firstBad) { firstBad.focus(); return; }

    var submit = $('create-submit');
    submit.disabled = true;
    submit.textContent = 'Creating…';
    var session = state.session;
    api('POST', '', body).then(function (created) {
      if (session !== state.session) return;
      closeCreate(true);
      upsertKey(stripPlaintext(created), true);
      showNewKey(created, 'created');
    }, function (err) {
      if (session !== state.session) return;
      if (err instanceof ApiError && err.status === 400 && err.field && showCreateFieldError(err.field, err.message)) return;
      if (err instanceof ApiError && err.reason === 'scope_not_grantable') {
        showCreateFieldError('scopes', describeError(err));
        return;
      }
      handleError(err);
    }).then(function () {
      submit.disabled = false;
      submit.textContent = 'Create key';
    });
  }

  // The list keeps key objects only; the plaintext lives in the once-shown panel.
  function stripPlaintext(key) {
    var copy = {};
    Object.keys(key || {}).forEach(function (k) { if (k !== 'key') copy[k] = key[k]; });
    return copy;
  }

  // ---------------------------------------------------------------- the once-shown plaintext

  var copyTimer = 0;

  function showNewKey(created, how) {
    var panel = $('new-key');
    $('new-key-value').textContent = created.key || '';
    $('new-key-for').textContent = (how === 'rotated' ? 'Replacement for ' : 'New key ') + quoted(created.name || created.id) +
      (created.scopes && created.scopes.length ? ' \u00b7 ' + created.scopes.join(', ') : '');
    $('new-key-status').textContent = '';
    $('new-key-copy').textContent = 'Copy';
    panel.hidden = false;
    panel.scrollIntoView({ block: 'nearest' });
    $('new-key-title').focus();
  }

  function hideNewKey() {
    $('new-key-value').textContent = '';
    $('new-key-for').textContent = '';
    $('new-key-status').textContent = '';
    $('new-key').hidden = true;
    clearTimeout(copyTimer);
  }

  function copyNewKey() {
    var value = $('new-key-value').textContent;
    if (!value) return;
    var done = function () {
      $('new-key-copy').textContent = 'Copied';
      $('new-key-status').textContent = 'Copied to the clipboard.';
      clearTimeout(copyTimer);
      copyTimer = setTimeout(function () { $('new-key-copy').textContent = 'Copy'; }, 2500);
    };
    var fallback = function () {
      selectNewKey();
      var ok = false;
      try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
      if (ok) done();
      else $('new-key-status').textContent = 'The key is selected: press Ctrl+C (\u2318C on a Mac) to copy it.';
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, fallback);
    } else {
      fallback();
    }
  }

  function selectNewKey() {
    var range = document.createRange();
    range.selectNodeContents($('new-key-value'));
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function dismissNewKey() {
    hideNewKey();
    var back = $('list-view').hidden ? $('detail-title') : $('create-open');
    back.focus();
  }

  // ---------------------------------------------------------------- confirmations

  var pendingConfirm = null;

  // Resolves to {ok, grace}.
  function confirmDialog(opts) {
    var dialog = $('confirm');
    $('confirm-title').textContent = opts.title;
    $('confirm-text').textContent = opts.text;
    $('confirm-note').textContent = opts.note || '';
    $('confirm-note').hidden = !opts.note;
    $('confirm-grace-wrap').hidden = !opts.grace;
    if (opts.grace) $('rotate-grace').value = '24h';
    var ok = $('confirm-ok');
    ok.textContent = opts.ok;
    ok.className = 'btn ' + (opts.danger ? 'btn-danger' : 'btn-primary');
    dialog.returnValue = '';
    return new Promise(function (resolve) {
      pendingConfirm = resolve;
      if (typeof dialog.showModal === 'function') {
        dialog.showModal();
      } else {
        dialog.setAttribute('open', '');
      }
      (opts.grace ? $('rotate-grace') : $('confirm-cancel')).focus();
    });
  }

  function finishConfirm(value) {
    var dialog = $('confirm');
    var resolve = pendingConfirm;
    pendingConfirm = null;
    if (dialog.open) {
      if (typeof dialog.close === 'function') dialog.close(value);
      else dialog.removeAttribute('open');
    }
    if (resolve) resolve({ ok: value === 'ok', grace: $('rotate-grace').value });
  }

  // ---------------------------------------------------------------- lifecycle actions

  function revokeKey(key) {
    var name = key.name || key.id;
    return confirmDialog({
      title: 'Revoke ' + quoted(name) + '?',
      text: MESSAGES.revoke,
      note: 'Programs using it get 401 errors from now on. This cannot be undone. To remove it from the list as well, delete it instead.',
      ok: 'Revoke key',
      danger: true
    }).then(function (answer) {
      if (!answer.ok) return;
      var session = state.session;
      return api('POST', keyPath(key.id, '/revoke')).then(function (updated) {
        if (session !== state.session) return;
        clearAlert();
        applyUpdate(updated || Object.assign({}, key, { status: 'revoked' }));
        notify('Revoked ' + quoted(name) + '. It stays listed for audit.');
      }, handleError);
    });
  }

  function deleteKey(key) {
    var name = key.name || key.id;
    return confirmDialog({
      title: 'Delete ' + quoted(name) + '?',
      text: MESSAGES.del,
      note: key.status === 'revoked'
        ? 'This cannot be undone.'
        : 'Programs using it get 401 errors from now on. This cannot be undone. To keep it listed for audit, revoke it instead.',
      ok: 'Delete key',
      danger: true
    }).then(function (answer) {
      if (!answer.ok) return;
      var session = state.session;
      return api('DELETE', keyPath(key.id)).then(function () {
        if (session !== state.session) return;
        clearAlert();
        removeRow(key.id);
        state.usage.delete(key.id);
        if (state.detailId === key.id) location.hash = '';
        notify('Deleted ' + quoted(name) + '.');
      }, function (err) {
        if (err instanceof ApiError && err.status === 404) {
          removeRow(key.id);
          if (state.detailId === key.id) location.hash = '';
        }
        handleError(err);
      });
    });
  }

  function rotateKey(key) {
    var name = key.name || key.id;
    return confirmDialog({
      title: 'Rotate ' + quoted(name) + '?',
      text: 'A new key with the same scopes is created and shown once. The current key keeps working for the time you choose, then expires.',
      note: 'Put the new key in place before the current one stops working.',
      ok: 'Rotate key',
      grace: true
    }).then(function (answer) {
      if (!answer.ok) return;
      var session = state.session;
      return api('POST', keyPath(key.id, '/rotate'), { grace: answer.grace }).then(function (created) {
        if (session !== state.session) return;
        clearAlert();
        upsertKey(stripPlaintext(created), true);
        showNewKey(created, 'rotated');
        // The old key now has rotated_to and a new expiry: fetch it again.
        return api('GET', keyPath(key.id)).then(function (old) {
          if (session !== state.session) return;
          applyUpdate(old);
        }, function () {
          applyUpdate(Object.assign({}, key, { rotated_to: created.id }));
        });
      }, handleError);
    });
  }

  // A key object came back from the API: refresh the list row and the detail view.
  function applyUpdate(key) {
    if (!key) return;
    var clean = stripPlaintext(key);
    delete clean.audit;
    if (state.rows.has(clean.id)) upsertKey(clean, false);
    if (state.detailId === clean.id) loadDetail(clean.id);
  }

  // ---------------------------------------------------------------- detail view

  function showDetail(id) {
    state.detailId = id;
    $('list-view').hidden = true;
    $('detail-view').hidden = false;
    closeCreate(false);
    var known = state.keys.get(id);
    $('detail-title').textContent = known ? known.name : 'Key';
    $('detail-ident').textContent = known ? ident(known) : id;
    clear($('detail-actions'));
    clear($('detail-body'));
    $('detail-body').appendChild(el('p', { className: 'muted loading' }, 'Loading key…'));
    loadDetail(id, true);
  }

  function loadDetail(id, focus) {
    var session = state.session;
    return Promise.all([
      api('GET', keyPath(id)),
      api('GET', keyPath(id, '/usage?days=' + USAGE_DAYS)).then(function (r) { return normalizeUsage(r && r.data); }, function (err) {
        if (err instanceof ApiError && err.status === 401) throw err;
        return null;
      })
    ]).then(function (results) {
      if (session !== state.session || state.detailId !== id) return;
      var key = results[0];
      state.detailKey = key;
      state.detailUsage = results[1];
      if (results[1]) state.usage.set(id, results[1]);
      renderDetail(key, results[1]);
      if (focus) $('detail-title').focus();
    }, function (err) {
      if (session !== state.session || state.detailId !== id) return;
      clear($('detail-body'));
      if (err instanceof ApiError && err.status === 404) {
        removeRow(id);
        location.hash = '';
      }
      handleError(err);
    });
  }

  function renderDetail(key, usage) {
    document.title = (key.name || key.id) + ' \u00b7 API Keys';
    $('detail-title').textContent = key.name || '(unnamed)';
    clear($('detail-ident'));
    $('detail-ident').appendChild(document.createTextNode(ident(key) + ' '));
    $('detail-ident').appendChild(el('span', { className: 'badge badge-' + key.status, dataset: { testid: 'detail-status' } }, statusLabel(key.status)));
    if (key.status === 'active' && key.rotated_to) {
      $('detail-ident').appendChild(el('span', { className: 'detail-note' },
        'Rotated: keeps working until ', key.expires_at ? timeEl(key.expires_at, fullFmt.format(parseTime(key.expires_at) || 0)) : 'its replacement takes over'));
    }
    var actions = $('detail-actions');
    clear(actions);
    actions.appendChild(actionButtons(key, 'detail'));

    var body = $('detail-body');
    clear(body);
    var u = key.usage || {};
    body.appendChild(el('div', { className: 'stats' },
      stat('Requests, 24 hours', u.requests_24h),
      stat('Requests, 30 days', u.requests_30d),
      stat('Refused, 24 hours', u.refused_24h, u.refused_24h > 0 ? 'stat-warn' : null)
    ));

    var chartCard = el('section', { className: 'card', 'aria-labelledby': 'chart-title' },
      el('div', { className: 'card-head' },
        el('h2', { id: 'chart-title' }, 'Daily requests, last ' + USAGE_DAYS + ' days'),
        el('ul', { className: 'legend', 'aria-hidden': 'true' },
          el('li', null, el('span', { className: 'swatch swatch-req' }), 'Accepted'),
          el('li', null, el('span', { className: 'swatch swatch-ref' }), 'Refused'))));
    var chartBox = el('div', { className: 'chart-box', id: 'detail-chart', dataset: { testid: 'detail-chart' } });
    chartCard.appendChild(chartBox);
    if (usage) {
      chartCard.appendChild(usageTable(usage));
    } else {
      chartBox.appendChild(el('p', { className: 'muted' }, 'Usage could not be loaded.'));
    }
    body.appendChild(chartCard);
    if (usage) drawChart(chartBox, usage);

    var grid = el('div', { className: 'detail-grid' });
    grid.appendChild(detailsCard(key));
    grid.appendChild(auditCard(key.audit || []));
    body.appendChild(grid);
    if (key.status !== 'revoked') body.appendChild(editCard(key));
  }

  function stat(label, value, extra) {
    return el('div', { className: 'stat' + (extra ? ' ' + extra : '') },
      el('div', { className: 'stat-value' }, typeof value === 'number' ? numberFmt.format(value) : '\u2014'),
      el('div', { className: 'stat-label' }, label));
  }

  function detailsCard(key) {
    var dl = el('dl', { className: 'facts' });
    var add = function (term, value) {
      dl.appendChild(el('dt', null, term));
      dl.appendChild(el('dd', null, value));
    };
    add('Status', statusLabel(key.status) + (key.revoked_at ? ' (revoked ' + dateText(key.revoked_at) + ')' : ''));
    add('Scopes', scopeChips(key.scopes || [], 0));
    add('Created', key.created_at ? timeFull(key.created_at) : '\u2014');
    add('Expires', key.expires_at ? timeFull(key.expires_at) : 'Never');
    add('Last used', key.last_used_at ? timeFull(key.last_used_at) : 'Never');
    add('Rate limit', key.rate_limit || 'None');
    add('Organization', key.org || '\u2014');
    if (key.team) add('Team', key.team);
    add('Owner', key.owner || '\u2014');
    add('ID', el('span', { className: 'mono' }, key.id));
    if (key.rotated_from) add('Replaces', keyLink(key.rotated_from));
    if (key.rotated_to) add('Replaced by', keyLink(key.rotated_to));
    return el('section', { className: 'card', 'aria-labelledby': 'facts-title' },
      el('h2', { id: 'facts-title' }, 'Details'), dl);
  }

  function timeFull(iso) {
    var t = parseTime(iso);
    return el('span', null, timeEl(iso, t === null ? iso : fullFmt.format(t)), el('span', { className: 'muted' }, ' \u00b7 ' + relative(iso)));
  }

  function keyLink(id) {
    return el('a', { className: 'mono', href: '#key/' + encodeURIComponent(id) }, id);
  }

  function auditCard(audit) {
    var card = el('section', { className: 'card', 'aria-labelledby': 'audit-title' }, el('h2', { id: 'audit-title' }, 'Audit trail'));
    if (!audit.length) {
      card.appendChild(el('p', { className: 'muted' }, 'No events recorded.'));
      return card;
    }
    var list = el('ol', { className: 'audit', dataset: { testid: 'detail-audit' } });
    audit.forEach(function (entry) {
      list.appendChild(el('li', { className: 'audit-item' },
        el('span', { className: 'audit-action' }, humanize(entry.action)),
        el('span', { className: 'audit-meta' },
          entry.actor ? el('span', { className: 'audit-actor' }, 'by ' + entry.actor + ' \u00b7 ') : null,
          entry.at ? timeEl(entry.at, fullFmt.format(parseTime(entry.at) || 0)) : null)));
    });
    card.appendChild(list);
    return card;
  }

  function usageTable(usage) {
    var tbody = el('tbody');
    usage.slice().reverse().forEach(function (d) {
      tbody.appendChild(el('tr', null,
        el('th', { scope: 'row' }, dayLabel(d.day, true)),
        el('td', null, numberFmt.format(d.requests)),
        el('td', null, numberFmt.format(d.refused))));
    });
    return el('details', { className: 'usage-table' },
      el('summary', null, 'Show as a table'),
      el('div', { className: 'table-scroll' },
        el('table', { className: 'plain' },
          el('thead', null, el('tr', null,
            el('th', { scope: 'col' }, 'Day (UTC)'), el('th', { scope: 'col' }, 'Accepted'), el('th', { scope: 'col' }, 'Refused'))),
          tbody)));
  }

  function niceCeil(v) {
    if (v <= 4) return 4;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 4, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  function drawChart(box, usage) {
    clear(box);
    var width = Math.max(280, Math.floor(box.clientWidth || 640));
    var height = 200;
    var pad = { top: 10, right: 4, bottom: 24, left: 40 };
    var plotW = width - pad.left - pad.right;
    var plotH = height - pad.top - pad.bottom;
    var n = usage.length;
    var rawMax = usage.reduce(function (m, d) { return Math.max(m, d.requests + d.refused); }, 0);
    var max = niceCeil(rawMax);
    var totalReq = usage.reduce(function (s, d) { return s + d.requests; }, 0);
    var totalRef = usage.reduce(function (s, d) { return s + d.refused; }, 0);
    var busiest = usage.reduce(function (b, d) { return d.requests + d.refused > b.requests + b.refused ? d : b; }, usage[0]);
    var label = 'Daily requests for the last ' + n + ' days: ' + plural(totalReq, 'accepted request', 'accepted requests') +
      ' and ' + plural(totalRef, 'refusal', 'refusals') + ' in total' +
      (rawMax > 0 ? '; busiest day ' + dayLabel(busiest.day, true) + ' with ' + numberFmt.format(rawMax) + '.' : '.');
    var svg = svgEl('svg', {
      class: 'chart', width: width, height: height, viewBox: '0 0 ' + width + ' ' + height,
      role: 'img', 'aria-label': label, 'data-testid': 'detail-chart-svg', focusable: 'false'
    });
    var y = function (v) { return pad.top + plotH - (v / max) * plotH; };
    [0, max / 2, max].forEach(function (tick) {
      svg.appendChild(svgEl('line', { class: 'chart-grid' + (tick === 0 ? ' chart-axis-line' : ''), x1: pad.left, x2: width - pad.right, y1: fix(y(tick)) + 0.5, y2: fix(y(tick)) + 0.5 }));
      if (tick === Math.round(tick)) {
        svg.appendChild(svgEl('text', { class: 'chart-label', x: pad.left - 8, y: fix(y(tick)) + 4, 'text-anchor': 'end' }, compact(tick)));
      }
    });
    var slotW = plotW / n;
    var barW = Math.max(2, slotW * 0.7);
    usage.forEach(function (d, i) {
      var x = pad.left + i * slotW + (slotW - barW) / 2;
      var g = svgEl('g', { class: 'chart-day' });
      g.appendChild(svgEl('title', null, dayLabel(d.day, true) + ': ' + plural(d.requests, 'accepted request', 'accepted requests') +
        ', ' + plural(d.refused, 'refusal', 'refusals')));
      g.appendChild(svgEl('rect', { class: 'chart-hit', x: fix(pad.left + i * slotW), y: pad.top, width: fix(slotW), height: plotH }));
      var hReq = (d.requests / max) * plotH;
      var hRef = (d.refused / max) * plotH;
      if (d.requests) g.appendChild(svgEl('rect', { class: 'bar-req', x: fix(x), y: fix(y(d.requests)), width: fix(barW), height: fix(Math.max(1, hReq)) }));
      if (d.refused) g.appendChild(svgEl('rect', { class: 'bar-ref', x: fix(x), y: fix(y(d.requests + d.refused)), width: fix(barW), height: fix(Math.max(1, hRef)) }));
      svg.appendChild(g);
      var every = n > 14 ? 7 : 2;
      if ((n - 1 - i) % every === 0) {
        var last = i === n - 1;
        svg.appendChild(svgEl('text', {
          class: 'chart-label', x: fix(last ? width - pad.right : pad.left + i * slotW + slotW / 2), y: height - 6,
          'text-anchor': last ? 'end' : 'middle'
        }, dayLabel(d.day)));
      }
    });
    box.appendChild(svg);
  }

  function compact(v) {
    if (v >= 1e6) return (v / 1e6).toFixed(v % 1e6 ? 1 : 0) + 'M';
    if (v >= 1e3) return (v / 1e3).toFixed(v % 1e3 ? 1 : 0) + 'k';
    return String(v);
  }

  // Rename, change expiry, change rate limit (PATCH).
  function editCard(key) {
    var form = el('form', { id: 'edit-form', novalidate: true });
    var currentExpiry = key.expires_at ? 'Keep: ' + dateText(key.expires_at) : 'Keep: never';
    form.appendChild(el('div', { className: 'field-row' },
      el('div', { className: 'field' },
        el('label', { for: 'edit-name' }, 'Name'),
        el('input', { id: 'edit-name', type: 'text', maxlength: '100', autocomplete: 'off', 'aria-describedby': 'edit-name-error', dataset: { testid: 'edit-name' } }),
        el('p', { className: 'field-error', id: 'edit-name-error', hidden: true })),
      el('div', { className: 'field' },
        el('label', { for: 'edit-expiry' }, 'Expires'),
        el('select', { id: 'edit-expiry', 'aria-describedby': 'edit-expiry-error', dataset: { testid: 'edit-expiry' } },
          el('option', { value: '' }, currentExpiry),
          el('option', { value: 'never' }, 'Never'),
          el('option', { value: '7' }, 'In 7 days'),
          el('option', { value: '30' }, 'In 30 days'),
          el('option', { value: '90' }, 'In 90 days'),
          el('option', { value: 'custom' }, 'On a date…')),
        el('div', { className: 'field-sub', id: 'edit-expiry-date-wrap', hidden: true },
          el('label', { className: 'visually-hidden', for: 'edit-expiry-date' }, 'Expiry date'),
          el('input', { id: 'edit-expiry-date', type: 'date', min: tomorrowValue() })),
        el('p', { className: 'field-error', id: 'edit-expiry-error', hidden: true })),
      el('div', { className: 'field' },
        el('label', { for: 'edit-rate-limit' }, 'Rate limit'),
        el('input', { id: 'edit-rate-limit', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'No limit', 'aria-describedby': 'edit-rate-limit-error', dataset: { testid: 'edit-rate-limit' } }),
        el('p', { className: 'field-error', id: 'edit-rate-limit-error', hidden: true }))
    ));
    var save = el('button', { type: 'submit', className: 'btn btn-primary', dataset: { testid: 'edit-submit' } }, 'Save changes');
    form.appendChild(el('div', { className: 'form-actions' }, save));
    form.querySelector('#edit-name').value = key.name || '';
    form.querySelector('#edit-rate-limit').value = key.rate_limit || '';
    var expirySelect = form.querySelector('#edit-expiry');
    expirySelect.addEventListener('change', function () {
      var custom = expirySelect.value === 'custom';
      form.querySelector('#edit-expiry-date-wrap').hidden = !custom;
      if (custom) {
        var dateInput = form.querySelector('#edit-expiry-date');
        if (!dateInput.value) dateInput.value = localDateValue(key.expires_at) || '';
        dateInput.focus();
      }
    });
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      submitEdit(key, form, save);
    });
    return el('section', { className: 'card', 'aria-labelledby': 'edit-title' },
      el('h2', { id: 'edit-title' }, 'Edit'), form);
  }

  var EDIT_FIELDS = { name: 'edit-name', expires_at: 'edit-expiry', rate_limit: 'edit-rate-limit' };

  function submitEdit(key, form, save) {
    clearAlert();
    Object.keys(EDIT_FIELDS).forEach(function (f) { setFieldError(EDIT_FIELDS[f], ''); });
    var patch = {};
    var name = $('edit-name').value.trim();
    if (!name) {
      setFieldError('edit-name', 'Enter a name of 1 to 100 characters.');
      $('edit-name').focus();
      return;
    }
    if (name !== key.name) patch.name = name;
    var expiry = $('edit-expiry').value;
    if (expiry === 'never') patch.expires_at = null;
    else if (expiry === 'custom') {
      var at = endOfLocalDay($('edit-expiry-date').value);
      if (!at || Date.parse(at) <= Date.now()) {
        setFieldError('edit-expiry', 'Pick a date in the future.', $('edit-expiry-date'));
        $('edit-expiry-date').focus();
        return;
      }
      patch.expires_at = at;
    } else if (expiry) patch.expires_at = daysFromNow(parseInt(expiry, 10));
    var rate = $('edit-rate-limit').value.trim();
    if (rate !== (key.rate_limit || '')) patch.rate_limit = rate || null;
    if (!Object.keys(patch).length) {
      notify('Nothing to save.');
      return;
    }
    save.disabled = true;
    var session = state.session;
    api('PATCH', keyPath(key.id), patch).then(function (updated) {
      if (session !== state.session) return;
      applyUpdate(updated);
      notify('Saved changes to ' + quoted(updated && updated.name ? updated.name : name) + '.');
    }, function (err) {
      if (err instanceof ApiError && err.status === 400 && EDIT_FIELDS[err.field]) {
        setFieldError(EDIT_FIELDS[err.field], err.message || 'This value is not valid.');
        $(EDIT_FIELDS[err.field]).focus();
        return;
      }
      handleError(err);
    }).then(function () {
      save.disabled = false;
    });
  }

  var resizeTimer = 0;
  function redrawChart() {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      var box = $('detail-chart');
      if (box && state.detailUsage && !$('detail-view').hidden) drawChart(box, state.detailUsage);
    }, 120);
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    $('signin-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var key = $('manager-key').value.trim();
      if (!key) {
        $('manager-key').setAttribute('aria-invalid', 'true');
        showAlert('Enter a management key.');
        $('manager-key').focus();
        return;
      }
      signIn(key, false);
    });
    $('sign-out').addEventListener('click', function () { signOut(null); });
    $('alert-close').addEventListener('click', clearAlert);

    $('create-open').addEventListener('click', function () {
      if ($('create-panel').hidden) openCreate(); else closeCreate(false);
    });
    $('empty-create').addEventListener('click', openCreate);
    $('create-cancel').addEventListener('click', function () {
      closeCreate(true);
      $('create-open').focus();
    });
    $('create-form').addEventListener('submit', submitCreate);
    $('create-expiry').addEventListener('change', function () {
      var custom = $('create-expiry').value === 'custom';
      $('create-expiry-date-wrap').hidden = !custom;
      setFieldError('create-expiry', '', $('create-expiry'));
      if (custom) {
        $('create-expiry-date').min = tomorrowValue();
        $('create-expiry-date').focus();
      }
    });
    $('scopes-all').addEventListener('click', function () { setAllScopes(true); });
    $('scopes-none').addEventListener('click', function () { setAllScopes(false); });

    $('status-filter').addEventListener('change', function () {
      state.filter = $('status-filter').value;
      loadList(true);
    });
    $('load-more').addEventListener('click', function () { loadList(false); });

    $('new-key-copy').addEventListener('click', copyNewKey);
    $('new-key-dismiss').addEventListener('click', dismissNewKey);

    $('confirm-ok').addEventListener('click', function () { finishConfirm('ok'); });
    $('confirm-cancel').addEventListener('click', function () { finishConfirm('cancel'); });
    $('confirm').addEventListener('cancel', function (event) {
      event.preventDefault();
      finishConfirm('cancel');
    });
    $('confirm').addEventListener('close', function () {
      if (pendingConfirm) finishConfirm($('confirm').returnValue === 'ok' ? 'ok' : 'cancel');
    });

    $('detail-back').addEventListener('click', function (event) {
      event.preventDefault();
      if (location.hash) history.pushState(null, '', location.pathname + location.search);
      route();
    });
    window.addEventListener('hashchange', route);
    window.addEventListener('popstate', route);
    window.addEventListener('resize', redrawChart);

    var stored = null;
    try { stored = sessionStorage.getItem(STORAGE_KEY); } catch (e) { stored = null; }
    if (stored) {
      $('signin-view').hidden = true;
      signIn(stored, true);
    } else {
      showSignIn('');
    }
  }

  function setAllScopes(on) {
    Array.prototype.forEach.call($('create-scopes').querySelectorAll('input[type="checkbox"]'), function (box) {
      box.checked = on;
    });
    if (on) setFieldError('create-scopes', '', $('create-scopes-fieldset'));
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
