// Drives wx.addCard / wx.chooseCard of /sandbox/jweixin.js in a minimal fake browser (node >= 18).
// Input: env SANDBOX_TEST = {base, appid, ticket (jsapi), cardTicket, cardId, openid}.
// Output: one JSON line {ok, checks:[{name, ok, detail}], encryptCode}; exit code 1 on any failure.
'use strict';
const { crypto, cfg, checks, check, El, find, IOS, ANDROID, browser, sleep, waitFor, jsSign, configure } = require('./fake_browser.js');

function sorted(values) {
  const bufs = values.map((v) => Buffer.from(String(v), 'utf8'));
  bufs.sort(Buffer.compare);
  return crypto.createHash('sha1').update(Buffer.concat(bufs)).digest('hex');
}

function cardExt(ticket, openid, nonce) {
  const ts = String(Math.floor(Date.now() / 1000));
  return JSON.stringify({ openid, timestamp: ts, nonce_str: nonce, signature: sorted([ticket, ts, cfg.cardId, '', openid, nonce]), outer_str: 'shim' });
}

function call(win, api, args) {
  return new Promise((resolve) => {
    win.wx[api](
      Object.assign({}, args, {
        success: (r) => resolve(['success', r]),
        fail: (r) => resolve(['fail', r]),
        cancel: (r) => resolve(['cancel', r]),
      })
    );
  });
}

function chooseArgs(ticket) {
  const ts = Math.floor(Date.now() / 1000);
  const nonce = crypto.randomBytes(6).toString('hex');
  return { shopId: '', cardType: '', cardId: '', timestamp: ts, nonceStr: nonce, signType: 'SHA1', cardSign: sorted([ticket, cfg.appid, '', String(ts), nonce, '', '']) };
}

async function main() {
  const url = 'https://shop.example/coupons';
  let win = await browser(ANDROID, url);
  let r = await call(win, 'addCard', { cardList: [{ cardId: cfg.cardId, cardExt: cardExt(cfg.cardTicket, cfg.openid, 'a0') }] });
  check('addCard before wx.config: permission denied', r[0] === 'fail' && r[1].errMsg === 'addCard:permission denied', r[1].errMsg);

  check('config', (await configure(win, url, ['addCard', 'chooseCard'])) === 'ready');
  r = await call(win, 'addCard', { cardList: [{ cardId: cfg.cardId, cardExt: cardExt(cfg.ticket, cfg.openid, 'a1') }] });
  check('addCard signed with the jsapi_ticket fails', r[0] === 'fail' && r[1].errMsg === 'addCard:fail, signature error', r[1].errMsg);
  check('no sheet after a refusal', !win.document.getElementById('wx-card-sheet'));

  let p = call(win, 'addCard', { cardList: [{ cardId: cfg.cardId, cardExt: cardExt(cfg.cardTicket, cfg.openid, 'a2') }] });
  check('add sheet shows', await waitFor(() => win.document.getElementById('wx-card-cancel')));
  const addBtn = win.document.getElementById('wx-card-add');
  check('领取 / 取消 buttons', addBtn && addBtn.textContent === '领取' && win.document.getElementById('wx-card-cancel').textContent === '取消');
  check('sheet is a labelled dialog', win.document.getElementById('wx-card-sheet').getAttribute('role') === 'dialog');
  check('item shows the rule', (win.document.getElementById('wx-card-item-0') || {}).textContent.indexOf('减') >= 0);
  win.document.getElementById('wx-card-cancel').click();
  r = await p;
  check('取消 → cancel', r[0] === 'cancel' && r[1].errMsg === 'addCard:cancel', r[1].errMsg);

  p = call(win, 'addCard', { cardList: [{ cardId: cfg.cardId, cardExt: cardExt(cfg.cardTicket, cfg.openid, 'a3') }] });
  await waitFor(() => win.document.getElementById('wx-card-add'));
  win.document.getElementById('wx-card-add').click();
  r = await p;
  check('领取 → addCard:ok', r[0] === 'success' && r[1].errMsg === 'addCard:ok', r[1].errMsg);
  const item = (r[1].cardList || [])[0] || {};
  check('cardList item', item.cardId === cfg.cardId && item.isSuccess === true && typeof item.cardExt === 'string' && !!item.code, item);
  check('sheet removed', !win.document.getElementById('wx-card-sheet'));

  r = await call(win, 'chooseCard', chooseArgs(cfg.ticket));
  check('chooseCard signed with the jsapi_ticket fails', r[0] === 'fail' && r[1].errMsg === 'chooseCard:fail, signature error', r[1].errMsg);
  p = call(win, 'chooseCard', chooseArgs(cfg.cardTicket));
  check('picker shows', await waitFor(() => win.document.getElementById('wx-card-none')));
  check('不使用 button', win.document.getElementById('wx-card-none').textContent === '不使用');
  const pick = win.document.getElementById('wx-card-pick-0');
  check('the card is offered', !!pick && pick.textContent.indexOf('减') >= 0);
  pick.click();
  r = await p;
  check('pick → chooseCard:ok', r[0] === 'success' && r[1].errMsg === 'chooseCard:ok', r[1].errMsg);
  check('cardList is a JSON string', typeof r[1].cardList === 'string');
  let list = [];
  try {
    list = JSON.parse(r[1].cardList);
  } catch (e) {}
  check('card_id and encrypt_code', list.length === 1 && list[0].card_id === cfg.cardId && !!list[0].encrypt_code, r[1].cardList);
  const encryptCode = list.length ? list[0].encrypt_code : null;

  p = call(win, 'chooseCard', chooseArgs(cfg.cardTicket));
  await waitFor(() => win.document.getElementById('wx-card-none'));
  win.document.getElementById('wx-card-none').click();
  r = await p;
  check('不使用 → cancel', r[0] === 'cancel' && r[1].errMsg === 'chooseCard:cancel', r[1].errMsg);

  win = await browser(ANDROID, url);
  check('config without the card APIs', (await configure(win, url, ['chooseWXPay'])) === 'ready');
  r = await call(win, 'addCard', { cardList: [{ cardId: cfg.cardId, cardExt: cardExt(cfg.cardTicket, cfg.openid, 'a4') }] });
  check('addCard not in jsApiList: permission denied', r[0] === 'fail' && r[1].errMsg === 'addCard:permission denied', r[1].errMsg);
  r = await call(win, 'chooseCard', chooseArgs(cfg.cardTicket));
  check('chooseCard not in jsApiList: permission denied', r[0] === 'fail' && r[1].errMsg === 'chooseCard:permission denied', r[1].errMsg);

  const ok = checks.every((c) => c.ok);
  console.log(JSON.stringify({ ok, checks, encryptCode }));
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, checks, error: String(e && e.stack) }));
  process.exit(1);
});
