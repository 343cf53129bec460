// Drives /sandbox/jweixin.js in a minimal fake browser (node >= 18: global fetch).
// Input: env SANDBOX_TEST = {base, appid, ticket, payKey, merchantKeyPem, v2Prepay, v3Prepay, v3PrepayBad}.
// Output: one JSON line {ok, checks:[{name, ok, detail}]}; exit code 1 on any failure.
'use strict';
const { crypto, cfg, checks, check, El, find, IOS, ANDROID, browser, sleep, waitFor, jsSign, configure } = require('./fake_browser.js');
function v3PayArgs(prepay) {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = crypto.randomBytes(8).toString('hex');
  const pkg = 'prepay_id=' + prepay;
  const paySign = crypto
    .createSign('RSA-SHA256')
    .update(`${cfg.appid}\n${ts}\n${nonce}\n${pkg}\n`)
    .sign(cfg.merchantKeyPem, 'base64');
  return { timestamp: ts, nonceStr: nonce, package: pkg, signType: 'RSA', paySign };
}

function v2PayArgs(prepay) {
  const p = {
    appId: cfg.appid,
    timeStamp: String(Math.floor(Date.now() / 1000)),
    nonceStr: crypto.randomBytes(8).toString('hex'),
    package: 'prepay_id=' + prepay,
    signType: 'MD5',
  };
  const s =
    Object.keys(p)
      .sort()
      .map((k) => `${k}=${p[k]}`)
      .join('&') + `&key=${cfg.payKey}`;
  p.paySign = crypto.createHash('md5').update(s).digest('hex').toUpperCase();
  return p;
}

function choose(win, args) {
  return new Promise((resolve) => {
    let completed = false;
    win.wx.chooseWXPay(
      Object.assign({}, args, {
        success: (r) => resolve(['success', r.errMsg, () => completed]),
        fail: (r) => resolve(['fail', r.errMsg, () => completed]),
        cancel: (r) => resolve(['cancel', r.errMsg, () => completed]),
        complete: () => (completed = true),
      })
    );
  });
}

async function main() {
  // ---- Android: the CURRENT url counts ----
  const landing = 'https://shop.example/landing?from=menu';
  const current = 'https://shop.example/pay/checkout?order=V3SHIM001';
  const a = await browser(ANDROID, landing + '#/start');
  check('android platform', a.__wxSandbox.platform === 'android', a.__wxSandbox.platform);
  a.location.href = current + '#/pay'; // pushState
  let r = await configure(a, landing);
  check('android: landing-url signature refused', r === 'config:invalid signature', r);
  check('android: lastError', a.__wxSandbox.lastError === 'config:invalid signature', a.__wxSandbox.lastError);
  check('android: lastConfigUrl is current url w/o fragment', a.__wxSandbox.lastConfigUrl === current, a.__wxSandbox.lastConfigUrl);
  r = await configure(a, current);
  check('android: current-url signature accepted', r === 'ready', r);
  check('android: configured', a.__wxSandbox.configured === true);
  let late = false;
  a.wx.ready(() => (late = true));
  await waitFor(() => late, 1000);
  check('late wx.ready called', late);
  let cj = await new Promise((res) => a.wx.checkJsApi({ jsApiList: ['chooseWXPay'], success: res }));
  check('checkJsApi', cj.checkResult.chooseWXPay === true && cj.errMsg === 'checkJsApi:ok', cj);

  // Bad paySign.
  const bad = v3PayArgs(cfg.v3Prepay);
  bad.paySign = bad.paySign.slice(0, 10) + (bad.paySign[10] === 'A' ? 'B' : 'A') + bad.paySign.slice(11);
  let [kind, msg] = await choose(a, bad);
  check('bad paySign fails', kind === 'fail' && msg.startsWith('chooseWXPay:fail, 支付验证签名失败'), msg);
  check('no sheet after failure', a.document.getElementById('wx-pay-sheet') === null);

  // The pay sheet, 支付.
  const paying = choose(a, v3PayArgs(cfg.v3Prepay));
  const shown = await waitFor(() => a.document.getElementById('wx-pay-confirm'));
  check('sheet shown', shown);
  const $ = (id) => a.document.getElementById(id);
  check('sheet amount', $('wx-pay-amount') && $('wx-pay-amount').textContent === '¥8.80', $('wx-pay-amount') && $('wx-pay-amount').textContent);
  check('sheet merchant', $('wx-pay-merchant') && $('wx-pay-merchant').textContent === cfg.merchantName);
  check('sheet description', $('wx-pay-desc') && $('wx-pay-desc').textContent === 'shim-v3');
  check('button texts', $('wx-pay-confirm').textContent === '支付' && $('wx-pay-cancel').textContent === '取消');
  $('wx-pay-confirm').click();
  const [k2, m2, done2] = await paying;
  check('chooseWXPay success', k2 === 'success' && m2 === 'chooseWXPay:ok', m2);
  check('complete called', done2());
  check('sheet removed', $('wx-pay-sheet') === null && $('wx-pay-mask') === null);
  check('lastPay', a.__wxSandbox.lastPay && a.__wxSandbox.lastPay.result === 'ok', a.__wxSandbox.lastPay);
  [kind, msg] = await choose(a, v3PayArgs(cfg.v3Prepay));
  check('paid order cannot be paid again', kind === 'fail' && msg.indexOf('该订单已支付') >= 0, msg);

  // ---- iOS: the LANDING url counts ----
  const b = await browser(IOS, landing + '#/x');
  b.location.href = current;
  check('ios platform', b.__wxSandbox.platform === 'ios');
  // chooseWXPay while wx.config is still being verified.
  const pending = configure(b, landing);
  [kind, msg] = await choose(b, v3PayArgs(cfg.v3Prepay));
  check('chooseWXPay during config: offline verifying', msg === 'chooseWXPay:fail, the permission value is offline verifying', msg);
  r = await pending;
  check('ios: landing-url signature accepted', r === 'ready', r);
  check('ios: lastConfigUrl is landing url', b.__wxSandbox.lastConfigUrl === landing, b.__wxSandbox.lastConfigUrl);
  r = await configure(b, current);
  check('ios: current-url signature refused', r === 'config:invalid signature', r);
  [kind, msg] = await choose(b, v3PayArgs(cfg.v3Prepay));
  check('chooseWXPay without a good config: permission denied', msg === 'chooseWXPay:permission denied', msg);

  // ---- WeixinJSBridge.getBrandWCPayRequest (no wx.config needed) ----
  await waitFor(() => b.bridgeReady(), 1000);
  check('WeixinJSBridgeReady fired', b.bridgeReady());
  const bridge = (args) => new Promise((res) => b.WeixinJSBridge.invoke('getBrandWCPayRequest', args, res));
  let p = bridge(v2PayArgs(cfg.v2Prepay));
  await waitFor(() => b.document.getElementById('wx-pay-cancel'));
  check('bridge sheet amount', b.document.getElementById('wx-pay-amount').textContent === '¥0.01');
  b.document.getElementById('wx-pay-cancel').click();
  let res = await p;
  check('bridge cancel', res.err_msg === 'get_brand_wcpay_request:cancel', res);
  const wrongKind = v2PayArgs(cfg.v2Prepay);
  wrongKind.signType = 'RSA';
  res = await bridge(wrongKind);
  check('bridge wrong signType fails', res.err_msg === 'get_brand_wcpay_request:fail', res);
  p = bridge(v2PayArgs(cfg.v2Prepay));
  await waitFor(() => b.document.getElementById('wx-pay-confirm'));
  b.document.getElementById('wx-pay-confirm').click();
  res = await p;
  check('bridge ok', res.err_msg === 'get_brand_wcpay_request:ok', res);

  const ok = checks.every((c) => c.ok);
  console.log(JSON.stringify({ ok, checks }));
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String((e && e.stack) || e), checks }));
  process.exit(1);
});
