// The browser side of `kubectl virt vnc --web`: noVNC's RFB client on the page's own websocket
// (/websockify, same origin, the session cookie), which the plugin joins to the VMI's vnc stream.
// Bundled for the browser by kubectl-virt/bundle.js. The title says the state, for people and
// for the end-to-end test that drives a headless browser.
import RFB from '@novnc/novnc';

const screen = document.getElementById('screen');
const status = document.getElementById('status');
const vmi = document.body.dataset.vmi;
const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websockify`;

function say(state, text) {
  status.textContent = text;
  document.title = `${state}: vmi/${vmi}`;
}

say('connecting', `connecting to vmi/${vmi}…`);
const rfb = new RFB(screen, url, { wsProtocols: ['binary'] });
rfb.scaleViewport = true;
rfb.addEventListener('connect', () => say('connected', `vmi/${vmi}`));
rfb.addEventListener('disconnect', (event) =>
  say('disconnected', event.detail.clean ? `vmi/${vmi}: disconnected` : `vmi/${vmi}: the connection was lost (the plugin's terminal says why)`),
);
rfb.addEventListener('securityfailure', (event) => say('failed', `vmi/${vmi}: ${event.detail.reason ?? 'security negotiation failed'}`));

document.getElementById('keys').addEventListener('click', () => rfb.sendCtrlAltDel());
document.getElementById('quit').addEventListener('click', async () => {
  rfb.disconnect();
  await fetch('/quit', { method: 'POST' });
  say('ended', 'ended: you may close this tab');
});
