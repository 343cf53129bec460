/*
 * WeChat JS-SDK sandbox shim (wechat-sandbox). Stands in for
 * https://res.wx.qq.com/open/js/jweixin-1.6.0.js when the shop runs without WeChat.
 *
 * Every check (wx.config signature, paySign, order state) is done by the sandbox server;
 * this file only carries data and draws the pay sheet.
 *
 * Test hooks: window.__wxSandbox = {configured, configPending, lastConfigUrl, lastError,
 * platform, landingUrl, configCount, lastPay, base, jsApiList, share}.
 * Pay sheet ids: #wx-pay-sheet, #wx-pay-merchant, #wx-pay-amount, #wx-pay-desc,
 * #wx-pay-payer, buttons #wx-pay-confirm ("支付") and #wx-pay-cancel ("取消").
 * Card sheets (wx.addCard / wx.chooseCard): #wx-card-sheet with #wx-card-item-N,
 * #wx-card-add ("领取"), #wx-card-cancel ("取消"), #wx-card-pick-N, #wx-card-none ("不使用");
 * __wxSandbox.lastCard = {api, result, errMsg}.
 */
(function (global) {
  'use strict';
  if (global.wx && global.wx.__sandbox) return;
  var doc = global.document;

  function stripHash(u) {
    u = String(u || '');
    var i = u.indexOf('#');
    return i < 0 ? u : u.slice(0, i);
  }

  var scriptSrc = (doc && doc.currentScript && doc.currentScript.src) || '';
  var base = (function () {
    var m = /^(.*)\/jweixin\.js(\?.*)?$/.exec(scriptSrc);
    if (m) return m[1];
    return global.__wxSandboxBase || '/sandbox';
  })();
  var ua = (global.navigator && global.navigator.userAgent) || '';
  var platform = /iPhone|iPad|iPod/i.test(ua) ? 'ios' : /Android/i.test(ua) ? 'android' : 'other';
  // iOS WeChat signs against the URL the page was landed on; Android and others against the
  // current URL (after pushState). Neither includes the fragment.
  var landingUrl = stripHash(global.location && global.location.href);

  function signUrl() {
    return platform === 'ios' ? landingUrl : stripHash(global.location.href);
  }

  var status = {
    configured: false,
    configPending: false,
    lastConfigUrl: null,
    lastError: null,
    platform: platform,
    landingUrl: landingUrl,
    configCount: 0,
    lastPay: null,
    base: base
  };
  global.__wxSandbox = status;

  var configId = null;
  var readyFns = [];
  var errorFns = [];
  var lastErrorRes = null;

  function later(fn) {
    setTimeout(fn, 0);
  }

  function safe(fn, arg) {
    try {
      fn(arg);
    } catch (e) {
      later(function () {
        throw e;
      });
    }
  }

  function post(path, body, cb) {
    var url = base + path;
    var payload = JSON.stringify(body);
    var called = false;
    function done(err, res) {
      if (called) return;
      called = true;
      safe(function () {
        cb(err, res);
      });
    }
    if (typeof global.fetch === 'function') {
      global
        .fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: payload,
          credentials: 'same-origin'
        })
        .then(function (r) {
          return r.json();
        })
        .then(
          function (j) {
            done(null, j);
          },
          function (e) {
            done(e || new Error('network error'), null);
          }
        );
      return;
    }
    var x = new global.XMLHttpRequest();
    x.open('POST', url, true);
    x.setRequestHeader('Content-Type', 'application/json');
    x.onreadystatechange = function () {
      if (x.readyState !== 4) return;
      var j = null;
      try {
        j = JSON.parse(x.responseText);
      } catch (e) {
        return done(e, null);
      }
      done(null, j);
    };
    x.send(payload);
  }

  function finish(o, kind, res) {
    o = o || {};
    if (typeof o[kind] === 'function') safe(o[kind], res);
    if (typeof o.complete === 'function') safe(o.complete, res);
  }

  function str(v) {
    return v === undefined || v === null ? '' : String(v);
  }

  /* ---------------- pay sheet ---------------- */


  function el(tag, id, text, cls) {
    var e = doc.createElement(tag);
    if (id) e.setAttribute('id', id);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function root() {
    return doc.body || doc.documentElement;
  }

  // The sheet's stylesheet, from beside this script (a <link>, not an inline <style>: the shop's
  // Content-Security-Policy allows styles from its own origin only). Loaded with the script so
  // the sheet is styled the moment it opens.
  function ensureStyle() {
    if (!doc || doc.getElementById('wx-sandbox-style')) return;
    var s = el('link', 'wx-sandbox-style');
    s.setAttribute('rel', 'stylesheet');
    s.setAttribute('href', base + '/jweixin.css');
    (doc.head || root()).appendChild(s);
  }
  if (doc && (doc.head || doc.body)) ensureStyle();

  function removeById(id) {
    var e = doc.getElementById(id);
    if (e && e.parentNode) e.parentNode.removeChild(e);
  }

  function removeSheet() {
    removeById('wx-pay-sheet');
    removeById('wx-pay-mask');
  }

  function toast(text) {
    removeById('wx-pay-toast');
    root().appendChild(el('div', 'wx-pay-toast', text));
    setTimeout(function () {
      removeById('wx-pay-toast');
    }, 1200);
  }

  function showSheet(info, onPay, onCancel) {
    ensureStyle();
    removeSheet();
    var mask = el('div', 'wx-pay-mask');
    var sheet = el('div', 'wx-pay-sheet');
    sheet.setAttribute('role', 'dialog');
    sheet.setAttribute('aria-label', '微信支付');
    sheet.appendChild(el('div', null, '微信支付', 'wx-pay-title'));
    sheet.appendChild(el('div', 'wx-pay-merchant', str(info.merchantName)));
    sheet.appendChild(el('div', 'wx-pay-amount', str(info.amountText)));
    sheet.appendChild(el('div', 'wx-pay-desc', str(info.description)));
    sheet.appendChild(el('div', 'wx-pay-payer', '付款方式：零钱' + (info.payer ? ' · ' + info.payer : '')));
    var pay = el('button', 'wx-pay-confirm', '支付');
    var cancel = el('button', 'wx-pay-cancel', '取消');
    pay.setAttribute('type', 'button');
    cancel.setAttribute('type', 'button');
    pay.onclick = function () {
      if (pay.disabled) return;
      pay.disabled = true;
      cancel.disabled = true;
      pay.setAttribute('aria-busy', 'true');
      onPay();
    };
    cancel.onclick = function () {
      if (cancel.disabled) return;
      pay.disabled = true;
      cancel.disabled = true;
      removeSheet();
      onCancel();
    };
    sheet.appendChild(pay);
    sheet.appendChild(cancel);
    root().appendChild(mask);
    root().appendChild(sheet);
  }

  // outcome: 'ok' | 'cancel' | 'fail' | 'permission'
  function pay(req, cb) {
    post('/jsapi/pay/prepare', req, function (err, res) {
      if (err || !res) return cb('fail', '网络错误');
      if (!res.ok) return cb(res.kind === 'permission' ? 'permission' : 'fail', str(res.reason));
      showSheet(
        res,
        function () {
          post('/jsapi/pay/confirm', { payToken: res.payToken }, function (e2, r2) {
            removeSheet();
            if (!e2 && r2 && r2.ok) {
              toast('支付成功');
              cb('ok');
            } else {
              cb('fail', (r2 && r2.reason) || '网络错误');
            }
          });
        },
        function () {
          post('/jsapi/pay/cancel', { payToken: res.payToken }, function () {
            cb('cancel');
          });
        }
      );
    });
  }

  /* ---------------- wx ---------------- */

  function chooseWXPay(o) {
    o = o || {};
    function report(outcome, reason) {
      var res;
      if (outcome === 'ok') res = { errMsg: 'chooseWXPay:ok' };
      else if (outcome === 'cancel') res = { errMsg: 'chooseWXPay:cancel' };
      else if (outcome === 'permission') res = { errMsg: 'chooseWXPay:permission denied' };
      else if (outcome === 'offline') res = { errMsg: 'chooseWXPay:fail, the permission value is offline verifying' };
      else res = { errMsg: 'chooseWXPay:fail, ' + reason };
      status.lastPay = { api: 'chooseWXPay', result: outcome === 'offline' ? 'fail' : outcome, errMsg: res.errMsg };
      finish(o, outcome === 'ok' ? 'success' : outcome === 'cancel' ? 'cancel' : 'fail', res);
    }
    if (status.configPending) return later(function () { report('offline'); });
    if (!status.configured) return later(function () { report('permission'); });
    pay(
      {
        via: 'chooseWXPay',
        configId: configId,
        // The JS-SDK field is `timestamp`; what WeChat signs is `timeStamp`.
        timeStamp: str(o.timestamp),
        nonceStr: str(o.nonceStr),
        package: str(o['package']),
        signType: o.signType === undefined ? 'SHA1' : str(o.signType),
        paySign: str(o.paySign),
        url: signUrl()
      },
      report
    );
  }

  function simple(name, extra) {
    return function (o) {
      later(function () {
        if (!status.configured) return finish(o, 'fail', { errMsg: name + ':permission denied' });
        var res = { errMsg: name + ':ok' };
        if (extra) for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) res[k] = extra[k];
        finish(o, 'success', res);
      });
    };
  }

  // Share cards: WeChat takes them only after wx.config, only for APIs in its jsApiList, with a
  // link on a JS-safe domain (here: the page's own host) and an absolute picture URL. What was
  // set is kept in __wxSandbox.share[name] for tests.
  function shareFn(name) {
    return function (o) {
      o = o || {};
      later(function () {
        if (!status.configured) return finish(o, 'fail', { errMsg: name + ':permission denied' });
        if ((status.jsApiList || []).indexOf(name) < 0) {
          return finish(o, 'fail', { errMsg: name + ':the permission value is offline verifying' });
        }
        var link = str(o.link);
        var img = str(o.imgUrl);
        var here = (global.location && global.location.host) || '';
        var m = /^https?:\/\/([^\/?#]+)/.exec(link);
        if (!m || m[1] !== here) {
          return finish(o, 'fail', { errMsg: name + ':fail, the link is not on a JS-safe domain' });
        }
        if (!/^https?:\/\//.test(img)) {
          return finish(o, 'fail', { errMsg: name + ':fail, imgUrl must be absolute' });
        }
        status.share = status.share || {};
        status.share[name] = {
          title: str(o.title),
          desc: o.desc === undefined ? null : str(o.desc),
          link: link,
          imgUrl: img
        };
        finish(o, 'success', { errMsg: name + ':ok' });
      });
    };
  }

  // 共享收货地址: the follower's addresses in WeChat (test ones here), picked on a sheet like
  // WeChat's. Ids: #wx-address-sheet, #wx-address-N, #wx-address-cancel.
  var ADDRESSES = [
    { userName: '王小二', telNumber: '13912345678', postalCode: '310000', provinceName: '浙江省',
      cityName: '杭州市', countryName: '西湖区', detailInfo: '文三路 259 号 昌地火炬大厦 1 号楼', nationalCode: '330106' },
    { userName: '李四', telNumber: '021-61234567', postalCode: '200120', provinceName: '上海市',
      cityName: '上海市', countryName: '浦东新区', detailInfo: '世纪大道 100 号 环球金融中心 9 楼', nationalCode: '310115' }
  ];

  function openAddress(o) {
    o = o || {};
    later(function () {
      if (!status.configured) return finish(o, 'fail', { errMsg: 'openAddress:permission denied' });
      if ((status.jsApiList || []).indexOf('openAddress') < 0) {
        return finish(o, 'fail', { errMsg: 'openAddress:the permission value is offline verifying' });
      }
      ensureStyle();
      removeSheet();
      var mask = el('div', 'wx-pay-mask');
      var sheet = el('div', 'wx-address-sheet');
      sheet.setAttribute('role', 'dialog');
      sheet.setAttribute('aria-label', '选择收货地址');
      sheet.appendChild(el('div', null, '选择收货地址', 'wx-pay-title'));
      ADDRESSES.forEach(function (a, i) {
        var b = el('button', 'wx-address-' + i, a.userName + ' ' + a.telNumber + ' ' + a.provinceName + a.cityName + a.countryName + a.detailInfo);
        b.setAttribute('type', 'button');
        b.onclick = function () {
          removeById('wx-address-sheet');
          removeById('wx-pay-mask');
          var res = { errMsg: 'openAddress:ok' };
          for (var k in a) if (Object.prototype.hasOwnProperty.call(a, k)) res[k] = a[k];
          finish(o, 'success', res);
        };
        sheet.appendChild(b);
      });
      var cancel = el('button', 'wx-address-cancel', '取消');
      cancel.setAttribute('type', 'button');
      cancel.onclick = function () {
        removeById('wx-address-sheet');
        removeById('wx-pay-mask');
        finish(o, 'cancel', { errMsg: 'openAddress:cancel' });
      };
      sheet.appendChild(cancel);
      root().appendChild(mask);
      root().appendChild(sheet);
    });
  }

  /* ---------------- cards (卡券) ---------------- */
  // wx.addCard shows a 领取 sheet (#wx-card-sheet: items #wx-card-item-N, buttons #wx-card-add
  // "领取" and #wx-card-cancel "取消"); wx.chooseCard a picker (#wx-card-pick-N, #wx-card-none
  // "不使用"). The sandbox server checks cardExt / cardSign against the wx_card api_ticket.
  // Styled from here (CSSOM, allowed by a style-src 'self' policy) like the pay sheet.
  var SHEET_FONT = '-apple-system,BlinkMacSystemFont,"PingFang SC","Microsoft YaHei",sans-serif';

  function removeCardSheet() {
    removeById('wx-card-sheet');
    removeById('wx-pay-mask');
  }

  function cardSheet(label) {
    ensureStyle();
    removeSheet();
    removeCardSheet();
    var mask = el('div', 'wx-pay-mask');
    var sheet = el('div', 'wx-card-sheet');
    sheet.setAttribute('role', 'dialog');
    sheet.setAttribute('aria-label', label);
    var st = sheet.style;
    st.position = 'fixed';
    st.left = '0';
    st.right = '0';
    st.bottom = '0';
    st.background = '#fff';
    st.borderRadius = '12px 12px 0 0';
    st.zIndex = '2147483001';
    st.padding = '16px 20px 28px';
    st.fontFamily = SHEET_FONT;
    st.color = '#191919';
    st.textAlign = 'center';
    st.maxWidth = '560px';
    st.margin = '0 auto';
    var t = el('div', null, label, 'wx-pay-title');
    t.style.fontSize = '15px';
    t.style.color = '#5f5f5f';
    t.style.marginBottom = '12px';
    sheet.appendChild(t);
    root().appendChild(mask);
    root().appendChild(sheet);
    return sheet;
  }

  // primary: white on #067d3f (5.6:1); secondary: #191919 on #f2f2f2 (15:1).
  function cardButton(id, text, primary) {
    var b = el('button', id, text);
    b.setAttribute('type', 'button');
    var s = b.style;
    s.display = 'block';
    s.width = '100%';
    s.border = '0';
    s.borderRadius = '8px';
    s.fontSize = '17px';
    s.fontWeight = '600';
    s.padding = '12px';
    s.marginTop = '10px';
    s.cursor = 'pointer';
    s.background = primary ? '#067d3f' : '#f2f2f2';
    s.color = primary ? '#fff' : '#191919';
    return b;
  }

  function cardLine(id, c) {
    var d = el('div', id, str(c.brand ? c.brand + ' · ' : '') + str(c.title) + ' · ' + str(c.rule));
    d.style.fontSize = '16px';
    d.style.padding = '8px 0';
    d.style.borderBottom = '1px solid #eee';
    return d;
  }

  function cardReport(api, o, kind, reason, extra) {
    var res;
    if (kind === 'ok') res = { errMsg: api + ':ok' };
    else if (kind === 'cancel') res = { errMsg: api + ':cancel' };
    else if (kind === 'permission') res = { errMsg: api + ':permission denied' };
    else res = { errMsg: api + ':fail, ' + reason };
    if (extra) for (var k in extra) if (Object.prototype.hasOwnProperty.call(extra, k)) res[k] = extra[k];
    var result = kind === 'ok' ? 'ok' : kind === 'cancel' ? 'cancel' : 'fail';
    status.lastCard = { api: api, result: result, errMsg: res.errMsg };
    finish(o, result === 'ok' ? 'success' : result, res);
  }

  function cardGate(api, o) {
    if (status.configPending) {
      later(function () { cardReport(api, o, 'fail', 'the permission value is offline verifying'); });
      return false;
    }
    if (!status.configured) {
      later(function () { cardReport(api, o, 'permission'); });
      return false;
    }
    return true;
  }

  function addCard(o) {
    o = o || {};
    if (!cardGate('addCard', o)) return;
    var src = o.cardList || [];
    var list = [];
    for (var i = 0; i < src.length; i++) {
      var c = src[i] || {};
      list.push({ cardId: str(c.cardId), cardExt: c.cardExt === undefined ? null : c.cardExt });
    }
    post('/jsapi/card/add/prepare', { configId: configId, cardList: list, url: signUrl() }, function (err, res) {
      if (err || !res) return cardReport('addCard', o, 'fail', 'network error');
      if (!res.ok) return cardReport('addCard', o, res.kind === 'permission' ? 'permission' : 'fail', str(res.reason));
      var sheet = cardSheet('领取卡券');
      (res.cards || []).forEach(function (c, n) {
        sheet.appendChild(cardLine('wx-card-item-' + n, c));
      });
      var add = cardButton('wx-card-add', '领取', true);
      var cancel = cardButton('wx-card-cancel', '取消', false);
      add.onclick = function () {
        if (add.disabled) return;
        add.disabled = true;
        cancel.disabled = true;
        add.setAttribute('aria-busy', 'true');
        post('/jsapi/card/add/confirm', { addToken: res.addToken }, function (e2, r2) {
          removeCardSheet();
          if (!e2 && r2 && r2.ok) {
            toast('已领取');
            cardReport('addCard', o, 'ok', null, { cardList: r2.cardList });
          } else {
            cardReport('addCard', o, 'fail', (r2 && r2.reason) || 'network error');
          }
        });
      };
      cancel.onclick = function () {
        if (cancel.disabled) return;
        add.disabled = true;
        cancel.disabled = true;
        removeCardSheet();
        post('/jsapi/card/add/cancel', { addToken: res.addToken }, function () {
          cardReport('addCard', o, 'cancel');
        });
      };
      sheet.appendChild(add);
      sheet.appendChild(cancel);
    });
  }

  function chooseCard(o) {
    o = o || {};
    if (!cardGate('chooseCard', o)) return;
    post(
      '/jsapi/card/choose/prepare',
      {
        configId: configId,
        shopId: str(o.shopId),
        cardType: str(o.cardType),
        cardId: str(o.cardId),
        timestamp: str(o.timestamp),
        nonceStr: str(o.nonceStr),
        signType: str(o.signType),
        cardSign: str(o.cardSign),
        url: signUrl()
      },
      function (err, res) {
        if (err || !res) return cardReport('chooseCard', o, 'fail', 'network error');
        if (!res.ok) return cardReport('chooseCard', o, res.kind === 'permission' ? 'permission' : 'fail', str(res.reason));
        var sheet = cardSheet('选择卡券');
        var buttons = [];
        function pick(index) {
          buttons.forEach(function (b) { b.disabled = true; });
          removeCardSheet();
          var body = { chooseToken: res.chooseToken };
          if (index !== null) body.index = index;
          post('/jsapi/card/choose/pick', body, function (e2, r2) {
            if (e2 || !r2 || !r2.ok) return cardReport('chooseCard', o, 'fail', (r2 && r2.reason) || 'network error');
            if (r2.cancel) return cardReport('chooseCard', o, 'cancel');
            cardReport('chooseCard', o, 'ok', null, { cardList: r2.cardList });
          });
        }
        var cards = res.cards || [];
        if (!cards.length) {
          var none = el('div', 'wx-card-empty', '暂无可用的卡券');
          none.style.color = '#5f5f5f';
          none.style.padding = '8px 0';
          sheet.appendChild(none);
        }
        cards.forEach(function (c) {
          var b = cardButton('wx-card-pick-' + c.index, str(c.title) + ' · ' + str(c.rule) + (c.until ? ' · 有效期至 ' + str(c.until) : ''), false);
          b.style.background = '#fff';
          b.style.border = '1px solid #067d3f';
          b.style.fontWeight = '400';
          b.style.textAlign = 'left';
          b.onclick = function () {
            if (!b.disabled) pick(c.index);
          };
          buttons.push(b);
          sheet.appendChild(b);
        });
        var skip = cardButton('wx-card-none', '不使用', false);
        skip.onclick = function () {
          if (!skip.disabled) pick(null);
        };
        buttons.push(skip);
        sheet.appendChild(skip);
      }
    );
  }

  var wx = {
    __sandbox: true,
    config: function (cfg) {
      cfg = cfg || {};
      status.configPending = true;
      status.configured = false;
      status.configCount += 1;
      status.jsApiList = (cfg.jsApiList || []).slice();
      configId = null;
      var url = signUrl();
      status.lastConfigUrl = url;
      post(
        '/jsapi/config',
        {
          appId: str(cfg.appId),
          timestamp: str(cfg.timestamp),
          nonceStr: str(cfg.nonceStr),
          signature: str(cfg.signature),
          url: url,
          jsApiList: cfg.jsApiList || [],
          platform: platform
        },
        function (err, res) {
          status.configPending = false;
          if (!err && res && res.ok) {
            configId = res.configId;
            status.configured = true;
            status.lastError = null;
            lastErrorRes = null;
            var fns = readyFns;
            readyFns = [];
            for (var i = 0; i < fns.length; i++) safe(fns[i]);
          } else {
            var msg = (res && res.errMsg) || 'config:fail, network error';
            status.lastError = msg;
            lastErrorRes = { errMsg: msg };
            var efns = errorFns.slice();
            for (var j = 0; j < efns.length; j++) safe(efns[j], { errMsg: msg });
          }
        }
      );
    },
    ready: function (fn) {
      if (typeof fn !== 'function') return;
      if (status.configured && !status.configPending) {
        later(function () {
          if (status.configured && !status.configPending) safe(fn);
          else readyFns.push(fn);
        });
      } else readyFns.push(fn);
    },
    error: function (fn) {
      if (typeof fn !== 'function') return;
      errorFns.push(fn);
      if (lastErrorRes && !status.configPending) {
        later(function () {
          // Still the latest outcome (no new wx.config in between)?
          if (lastErrorRes && !status.configPending) safe(fn, lastErrorRes);
        });
      }
    },
    checkJsApi: function (o) {
      o = o || {};
      later(function () {
        var r = {};
        var list = o.jsApiList || [];
        for (var i = 0; i < list.length; i++) r[list[i]] = typeof wx[list[i]] === 'function';
        finish(o, 'success', { checkResult: r, errMsg: 'checkJsApi:ok' });
      });
    },
    chooseWXPay: chooseWXPay,
    openAddress: openAddress,
    addCard: addCard,
    chooseCard: chooseCard,
    updateAppMessageShareData: shareFn('updateAppMessageShareData'),
    updateTimelineShareData: shareFn('updateTimelineShareData'),
    onMenuShareAppMessage: simple('onMenuShareAppMessage'),
    onMenuShareTimeline: simple('onMenuShareTimeline'),
    hideOptionMenu: simple('hideOptionMenu'),
    showOptionMenu: simple('showOptionMenu'),
    hideMenuItems: simple('hideMenuItems'),
    showMenuItems: simple('showMenuItems'),
    hideAllNonBaseMenuItem: simple('hideAllNonBaseMenuItem'),
    showAllNonBaseMenuItem: simple('showAllNonBaseMenuItem'),
    closeWindow: simple('closeWindow'),
    getNetworkType: simple('getNetworkType', { networkType: 'wifi' }),
    getLocation: simple('getLocation', { latitude: 22.5431, longitude: 113.9298, speed: 0, accuracy: 65 })
  };
  global.wx = global.jWeixin = wx;

  /* ---------------- WeixinJSBridge ---------------- */

  global.WeixinJSBridge = {
    invoke: function (name, params, cb) {
      params = params || {};
      cb = typeof cb === 'function' ? cb : function () {};
      if (name === 'getBrandWCPayRequest') {
        pay(
          {
            via: 'getBrandWCPayRequest',
            appId: str(params.appId),
            timeStamp: str(params.timeStamp),
            nonceStr: str(params.nonceStr),
            package: str(params['package']),
            signType: str(params.signType),
            paySign: str(params.paySign),
            url: signUrl()
          },
          function (outcome, reason) {
            var r = outcome === 'ok' ? 'ok' : outcome === 'cancel' ? 'cancel' : 'fail';
            var res = { err_msg: 'get_brand_wcpay_request:' + r };
            if (reason) res.err_desc = reason;
            status.lastPay = { api: 'getBrandWCPayRequest', result: r, errMsg: res.err_msg };
            safe(cb, res);
          }
        );
        return;
      }
      later(function () { safe(cb, { err_msg: name + ':ok' }); });
    },
    call: function () {},
    on: function () {}
  };

  if (doc && typeof doc.dispatchEvent === 'function') {
    later(function () {
      var ev;
      try {
        ev = new global.Event('WeixinJSBridgeReady');
      } catch (e) {
        ev = doc.createEvent('Event');
        ev.initEvent('WeixinJSBridgeReady', true, true);
      }
      doc.dispatchEvent(ev);
    });
  }
})(typeof window !== 'undefined' ? window : this);
