-- Ruang listener tickets, checked at the edge (LuaJIT in nginx, libnginx-mod-http-lua): no
-- request to the origin per listener, and one HMAC per ticket per nginx worker.
--
-- A ticket is "{listener}.{expires}.{mac}" in the URL path: /hls/{space}/t/{ticket}/{file}.
-- mac = base64url(HMAC-SHA256(key, "{space}.{listener}.{expires}")), unpadded, key =
-- RUANG_TICKET_KEY (the same key the Ruang nodes use). See src/ruang/guard/tickets.py.
--
-- nginx.conf loads this once, in the master (init_by_lua), with the key from nginx's
-- environment; each worker inherits it and keeps its own bounded LRU of tickets it has
-- verified (a player presents the same ticket a few times a second for up to 15 minutes).
-- Expiry is checked on every request, cached or not.
local ffi = require "ffi"
local bit = require "bit"
local base64 = require "ngx.base64"
local lrucache = require "resty.lrucache"

local byte, find, sub = string.byte, string.find, string.sub
local bor, bxor = bit.bor, bit.bxor
local encode_base64url = base64.encode_base64url
local now = ngx.now

local _M = {}

-- Good tickets remembered per worker; a cached entry is two short strings and a number
-- (~200 bytes), so ~20 MB per worker when full. Least recently used ones are dropped first.
_M.VERIFIED_CACHE = 100000
local MIN_KEY_LENGTH = 32 -- as the Ruang nodes require (guard/tickets.py)

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const char *data, size_t data_len, unsigned char *md,
                    unsigned int *md_len);
]]

local function load_libcrypto()
    local errors = {}
    for _, name in ipairs { "libcrypto.so.3", "libcrypto.so.1.1", "crypto" } do
        local ok, lib = pcall(ffi.load, name)
        if ok then
            return lib
        end
        errors[#errors + 1] = tostring(lib)
    end
    error("ruang_ticket: cannot load libcrypto: " .. table.concat(errors, "; "))
end

local crypto = load_libcrypto()
local SHA256 = crypto.EVP_sha256()
local mac_buf = ffi.new("unsigned char[32]")
local mac_len = ffi.new("unsigned int[1]")

local KEY, KEY_LEN, verified

-- base64url(HMAC-SHA256(key, text)), unpadded: 43 characters.
local function hmac_b64(key, key_len, text)
    if crypto.HMAC(SHA256, key, key_len, text, #text, mac_buf, mac_len) == nil
        or mac_len[0] ~= 32 then
        error("ruang_ticket: HMAC-SHA256 failed")
    end
    return encode_base64url(ffi.string(mac_buf, 32))
end

-- a == b in time that depends only on their length (the MAC's length is public).
local function same(a, b)
    if #a ~= #b then
        return false
    end
    local diff = 0
    for i = 1, #a do
        diff = bor(diff, bxor(byte(a, i), byte(b, i)))
    end
    return diff == 0
end
_M.same = same

-- Set the key (once, in nginx's master); refuse to start with none or a short one.
function _M.configure(key, cache_size)
    if not key or #key < MIN_KEY_LENGTH then
        error("ruang_ticket: RUANG_TICKET_KEY must be set in nginx's environment, at least "
            .. MIN_KEY_LENGTH .. " characters (the key the Ruang nodes use)")
    end
    -- RFC 4231 test case 2: the libcrypto binding computes HMAC-SHA256 correctly.
    if hmac_b64("Jefe", 4, "what do ya want for nothing?")
        ~= "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM" then
        error("ruang_ticket: libcrypto HMAC-SHA256 self-test failed")
    end
    KEY, KEY_LEN = key, #key
    local err
    verified, err = lrucache.new(cache_size or _M.VERIFIED_CACHE)
    if not verified then
        error("ruang_ticket: " .. tostring(err))
    end
end

-- Characters of a listener id or a MAC: url-safe base64.
local function b64url_only(s, from, to)
    for i = from, to do
        local c = byte(s, i)
        if not ((c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122)
                or c == 45 or c == 95) then
            return false
        end
    end
    return true
end

-- The shape ^[A-Za-z0-9_-]{11}\.[0-9]{10}\.[A-Za-z0-9_-]{43}$ (66 characters); the expiry
-- as a number, or nil.
local function parse(ticket)
    if #ticket ~= 66 or byte(ticket, 12) ~= 46 or byte(ticket, 23) ~= 46
        or not b64url_only(ticket, 1, 11) or not b64url_only(ticket, 24, 66) then
        return nil
    end
    for i = 13, 22 do
        local c = byte(ticket, i)
        if c < 48 or c > 57 then
            return nil
        end
    end
    return tonumber(sub(ticket, 13, 22))
end

-- "ok", or why not: "missing", "malformed", "forged", "expired" (as guard/tickets.py), for
-- "{space}/{ticket}" (nginx.conf hands both over in one string: each value a request handler
-- fetches from nginx costs more than the whole check of a ticket already verified).
function _M.check_path(path)
    if not KEY or not path then
        return "missing"
    end
    local expires = verified:get(path)
    if not expires then
        local slash = find(path, "/", 1, true)
        if not slash or slash == 1 or slash == #path then
            return "missing"
        end
        local space, ticket = sub(path, 1, slash - 1), sub(path, slash + 1)
        expires = parse(ticket)
        if not expires then
            return "malformed"
        end
        local expected = hmac_b64(KEY, KEY_LEN, space .. "." .. sub(ticket, 1, 22))
        if not same(expected, sub(ticket, 24)) then
            return "forged"
        end
        verified:set(path, expires)
    end
    if expires < now() then
        return "expired"
    end
    return "ok"
end

function _M.check(space, ticket)
    if not space or space == "" or not ticket or ticket == "" then
        return "missing"
    end
    return _M.check_path(space .. "/" .. ticket)
end

return _M
