// Ruang listener tickets, checked at the edge (njs): no request to the origin per listener.
//
// A ticket is "{listener}.{expires}.{mac}" in the URL path: /hls/{space}/t/{ticket}/{file}.
// mac = base64url(HMAC-SHA256(key, "{space}.{listener}.{expires}")), key = RUANG_TICKET_KEY
// (the same key the Ruang nodes use). See src/ruang/guard/tickets.py.
const crypto = require('crypto');
const KEY = process.env.RUANG_TICKET_KEY || '';
const SHAPE = /^([A-Za-z0-9_-]{11})\.([0-9]{10})\.([A-Za-z0-9_-]{43})$/;

function hmac(key, text) {
    return crypto.createHmac('sha256', key).update(text).digest('base64url');
}

// "ok", or why not: "missing", "malformed", "forged", "expired".
function verify(r) {
    const ticket = r.variables.ruang_ticket_raw;
    const space = r.variables.ruang_space;
    if (!KEY || !ticket || !space) {
        return 'missing';
    }
    const m = SHAPE.exec(ticket);
    if (!m) {
        return 'malformed';
    }
    const expected = hmac(KEY, space + '.' + m[1] + '.' + m[2]);
    // Compare MACs of the MACs, so the comparison's timing tells an attacker nothing.
    if (hmac(expected, 'cmp') !== hmac(m[3], 'cmp') || expected !== m[3]) {
        return 'forged';
    }
    if (Number(m[2]) < Date.now() / 1000) {
        return 'expired';
    }
    return 'ok';
}

// Only the LL-HLS query parameters survive, in a fixed order: cache-busting strings and
// reordered parameters all land on the same cache key.
function hlsArgs(r) {
    const msn = r.args._HLS_msn;
    const part = r.args._HLS_part;
    if (!msn || !/^[0-9]{1,9}$/.test(msn)) {
        return '';
    }
    if (part && /^[0-9]{1,2}$/.test(part)) {
        return '?_HLS_msn=' + msn + '&_HLS_part=' + part;
    }
    return '?_HLS_msn=' + msn;
}

export default { verify, hlsArgs };
