-- Baepo's activator: holds a request to a service that has no usable server (scaled to zero,
-- or its only instance being replaced) until one is ready, instead of answering 503 at once.
--
-- Every service backend runs `http-request lua.baepo_activate if { nbsrv eq 0 }` (`nbsrv`
-- counts the servers that may take a request: ready, not draining, not in maintenance). The
-- action
--   1. tells Baepo that requests wait (POST <BAEPO_ACTIVATOR_URL>?service=<name>, with the
--      secret of the file BAEPO_ACTIVATOR_TOKEN_FILE as a bearer token), at most once a second
--      per service, whatever the number of requests held: Baepo starts one instance for them;
--   2. looks at its backend's `nbsrv` every POLL_MS (core.msleep yields: no thread spins) and
--      returns as soon as a server is ready: HAProxy then dispatches the request as usual;
--   3. answers 503 with Retry-After once BAEPO_ACTIVATOR_WAIT_MS passed without one.
-- A worker that a reload replaced ("Stopping") never sees a server added since: Baepo changes
-- the new worker only. It sets its backend's handoff server ready, a unix socket whose path
-- leads to the new worker's `handoff` frontend, and the requests it holds go there: routed
-- again by host, served by the new instance, or held by the new worker if need be.
-- Without BAEPO_ACTIVATOR_URL it only holds (2, 3): a router with no Baepo behind it.
--
-- Rendered by baepo.router.configuration (setenv + lua-load in `global`); HAProxy 2.6, Lua 5.3.

local POLL_MS = 20
local NOTIFY_EVERY_MS = 1000
local NOTICE_TIMEOUT_MS = 1000
local BACKEND_PREFIX = "svc_" -- baepo.router.configuration.SERVICE_BACKEND_PREFIX
local HANDOFF_SERVER = "baepo_handoff" -- baepo.router.configuration.HANDOFF_SERVER
local RETRY_AFTER_S = "5"
local PAGE = "<!doctype html><html><head><meta charset=utf-8><title>503 Service Unavailable"
    .. "</title></head><body style=font-family:sans-serif;margin:4em>"
    .. "<h1>503 Service Unavailable</h1><p>No instance of this service started in time. "
    .. "Try again shortly.</p></body></html>"

local url = os.getenv("BAEPO_ACTIVATOR_URL")
local wait_ms = tonumber(os.getenv("BAEPO_ACTIVATOR_WAIT_MS") or "") or 60000
local token = nil
local token_file = os.getenv("BAEPO_ACTIVATOR_TOKEN_FILE")
if url and token_file then
    -- Read once, at load: the file is Baepo's (0600) and survives its restarts.
    local f = io.open(token_file, "r")
    if f then
        token = f:read("l")
        f:close()
    end
    if not token or token == "" then
        core.Alert("baepo activator: no token in " .. token_file .. "; not notifying Baepo")
        url = nil
    end
end

local notified = {} -- service -> when Baepo was last told (ms); one Lua state, shared

local function now_ms()
    local t = core.now()
    return t.sec * 1000 + t.usec // 1000
end

local stopping, stopping_read = false, 0

-- Whether a reload replaced this worker. `core.get_info()` builds a table of every `show info`
-- field: read at most every STOPPING_EVERY_MS for all held requests, not at each poll of each.
local STOPPING_EVERY_MS = 200
local function replaced()
    local now = now_ms()
    if not stopping and now - stopping_read >= STOPPING_EVERY_MS then
        stopping_read = now
        stopping = tonumber(core.get_info()["Stopping"]) == 1
    end
    return stopping
end

local function notify(service)
    local now = now_ms()
    local last = notified[service]
    if last and now - last < NOTIFY_EVERY_MS then
        return
    end
    notified[service] = now
    local ok, err = pcall(function()
        local response = core.httpclient():post{
            url = url .. "?service=" .. service,
            headers = {["authorization"] = {"Bearer " .. token}},
            body = "",
            -- A Baepo that accepts and never answers must not hold the request past its
            -- limit: about NOTICE_TIMEOUT_MS (+ HAProxy's connect retries) at worst.
            timeout = NOTICE_TIMEOUT_MS,
        }
        if not response or response.status ~= 204 then
            core.Warning("baepo activator: Baepo answered "
                .. tostring(response and response.status) .. " for " .. service)
        end
    end)
    if not ok then
        core.Warning("baepo activator: cannot reach Baepo: " .. tostring(err))
    end
end

local function activate(txn)
    local backend = txn.f:be_name()
    local service = backend
    if backend:sub(1, #BACKEND_PREFIX) == BACKEND_PREFIX then
        service = backend:sub(#BACKEND_PREFIX + 1)
    end
    local deadline = now_ms() + wait_ms
    while txn.f:nbsrv() < 1 do
        if replaced() then
            -- This worker's servers are frozen since the reload: hand the request to the new
            -- worker through the handoff server (the listener at its path is the new
            -- worker's), where it is routed again and held there if need be.
            local handoff = core.backends[backend].servers[HANDOFF_SERVER]
            if handoff then
                handoff:set_ready()
                return
            end
            -- A configuration without it (an older Baepo's): send the client there instead.
            txn:done(txn:reply{
                status = 307,
                reason = "Temporary Redirect",
                headers = {
                    ["location"] = {txn.sf:pathq() or "/"},
                    ["connection"] = {"close"},
                    ["retry-after"] = {"0"},
                },
            })
            return
        end
        if url then
            notify(service)
        end
        if now_ms() >= deadline then
            txn:done(txn:reply{
                status = 503,
                reason = "Service Unavailable",
                headers = {
                    ["content-type"] = {"text/html; charset=utf-8"},
                    ["retry-after"] = {RETRY_AFTER_S},
                    ["cache-control"] = {"no-store"},
                },
                body = PAGE,
            })
            return
        end
        core.msleep(POLL_MS)
    end
end

core.register_action("baepo_activate", {"http-req"}, activate, 0)
