// The fake browser the shim tests share: a minimal DOM (El), a window loading /sandbox/jweixin.js
// from the sandbox at SANDBOX_TEST.base, wx.config signing, and the checks list each script reports.
// Required by shim_test.js and card_shim_test.js.
'use strict';
const crypto = require('crypto');
const cfg = JSON.parse(process.env.SANDBOX_TEST);
const checks = [];
function check(name, ok, detail) {
  checks.push({ name, ok: !!ok, detail: detail === undefined ? null : detail });
}

class El {
  constructor(tag) {
    this.tagName = tag.toUpperCase();
    this.children = [];
    this.attrs = {};
    this.parentNode = null;
    this.textContent = '';
    this.className = '';
    this.disabled = false;
    this.onclick = null;
    this.style = {};
  }
  setAttribute(k, v) {
    this.attrs[k] = String(v);
    if (k === 'id') this.id = String(v);
  }
  getAttribute(k) {
    return this.attrs[k];
  }
  appendChild(c) {
    c.parentNode = this;
    this.children.push(c);
    return c;
  }
  removeChild(c) {
    this.children = this.children.filter((x) => x !== c);
    c.parentNode = null;
    return c;
  }
  click() {
    if (!this.disabled && this.onclick) this.onclick({ type: 'click' });
  }
}

function find(node, id) {
  if (node.id === id) return node;
  for (const c of node.children) {
    const f = find(c, id);
    if (f) return f;
  }
  return null;
}

const IOS = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 MicroMessenger/8.0.47';
const ANDROID = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120 Mobile MicroMessenger/8.0.47';

async function browser(ua, href) {
  const listeners = {};
  const html = new El('html');
  const head = html.appendChild(new El('head'));
  const body = html.appendChild(new El('body'));
  const document = {
    head,
    body,
    documentElement: html,
    currentScript: { src: cfg.base + '/jweixin.js' },
    createElement: (t) => new El(t),
    getElementById: (id) => find(html, id),
    addEventListener: (t, f) => (listeners[t] = listeners[t] || []).push(f),
    dispatchEvent: (ev) => {
      (listeners[ev.type] || []).forEach((f) => f(ev));
      return true;
    },
  };
  const win = {
    document,
    location: { href },
    navigator: { userAgent: ua },
    fetch: (u, o) => fetch(u, o),
    Event: class {
      constructor(t) {
        this.type = t;
      }
    },
  };
  let bridgeReady = false;
  document.addEventListener('WeixinJSBridgeReady', () => (bridgeReady = true));
  const src = await (await fetch(cfg.base + '/jweixin.js')).text();
  new Function('window', src)(win);
  win.bridgeReady = () => bridgeReady;
  return win;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(pred, ms = 5000) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) return false;
    await sleep(10);
  }
  return true;
}

function jsSign(url, ts, nonce) {
  const s = `jsapi_ticket=${cfg.ticket}&noncestr=${nonce}&timestamp=${ts}&url=${url}`;
  return crypto.createHash('sha1').update(s).digest('hex');
}

// wx.config signed for `signedUrl`; resolves 'ready' or the error's errMsg.
function configure(win, signedUrl, list) {
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(8).toString('hex');
  return new Promise((resolve) => {
    win.wx.ready(() => resolve('ready'));
    win.wx.error((e) => resolve(e.errMsg));
    win.wx.config({
      debug: false,
      appId: cfg.appid,
      timestamp: ts, // a number, as many pages pass it
      nonceStr: nonce,
      signature: jsSign(signedUrl, ts, nonce),
      jsApiList: list || ['chooseWXPay'],
    });
  });
}


module.exports = { crypto, cfg, checks, check, El, find, IOS, ANDROID, browser, sleep, waitFor, jsSign, configure };
