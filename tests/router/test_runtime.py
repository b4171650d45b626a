"""Parsers of HAProxy's runtime API, on output recorded from HAProxy 2.6."""

from __future__ import annotations

from baepo.router.runtime import parse_show_map, parse_show_proc, parse_stat_csv

STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,"
    "hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,"
    "addr,\n"
    "svc_app,a,0,0,3,5,2,40,0,0,,0,,0,0,0,0,no check,1,1,0,,,1,,,1,6,1,,0,,2,0,,0,,,,0,37,0,2,1,"
    "0,,,,,127.0.0.1:19001,\n"
    "svc_app,b,4,4,0,0,2,0,0,0,,0,,0,0,0,0,DRAIN,1,1,0,,,0,,,1,6,2,,0,,2,0,,0,,,,0,0,0,0,0,0,,,"
    ",,127.0.0.1:19002,\n"
    "svc_app,BACKEND,0,0,3,5,,40,0,0,0,0,,0,0,0,0,UP,1,1,0,,0,1,0,,1,6,0,,0,,1,0,,0,,,,0,37,0,2,"
    "1,0,,,,,,\n\n"
)

PROC = (
    "#<PID>          <type>          <reloads>       <uptime>        <version>      \n"
    "7718            master          3 [failed: 1]   0d00h20m15s     2.6.12-1+deb12u4\n"
    "# workers\n"
    "3867            worker          0               0d00h00m01s     2.6.12-1+deb12u4\n"
    "# old workers\n"
    "3001            worker          1               0d00h01m01s     2.6.12-1+deb12u4\n"
    "# programs\n\n"
)


def test_stat_rows_are_keyed_by_the_header() -> None:
    rows = parse_stat_csv(STAT)
    assert [(r["svname"], r["type"]) for r in rows] == [("a", "2"), ("b", "2"), ("BACKEND", "1")]
    a, b = rows[0], rows[1]
    assert (a["scur"], a["qcur"], a["stot"], a["hrsp_2xx"], a["hrsp_5xx"]) == (
        "3",
        "0",
        "40",
        "37",
        "1",
    )
    assert (b["status"], b["qcur"], b["addr"]) == ("DRAIN", "4", "127.0.0.1:19002")


def test_stat_without_a_header_is_empty() -> None:
    assert parse_stat_csv("Unknown command.\n") == []


def test_show_proc_names_master_workers_and_old_workers() -> None:
    procs = parse_show_proc(PROC)
    assert (procs.master, procs.reloads, procs.failed_reloads) == (7718, 3, 1)
    assert procs.workers == [3867]
    assert procs.old_workers == [3001]


def test_show_map_entries() -> None:
    out = "0x55f7c0e60d50 app.localhost svc_app\n0x55f7c0e60d90 docs.localhost baepo_paused\n\n"
    assert parse_show_map(out) == {"app.localhost": "svc_app", "docs.localhost": "baepo_paused"}


def test_stat_rows_keep_only_the_fields_asked_for() -> None:
    rows = parse_stat_csv(STAT, {"svname", "scur"})
    assert rows[0] == {"svname": "a", "scur": "3"}
    assert [r["svname"] for r in rows] == ["a", "b", "BACKEND"]
