//! Request handling and the cache, checked by what a real origin saw (hit counts, headers).
//! Time is a manual clock: TTL rules are tested without waiting.

mod common;

use std::sync::Arc;
use std::time::Duration;

use carapace_edge::{
    Behavior, CustomErrorResponse, EdgeConfig, Forwarded, ManualClock, Methods, PathBehavior, QueryStrings, Snapshot,
};
use carapace_kernel::ca::KeyAlgorithm;
use common::*;
use http::{Method, StatusCode};
use tokio::sync::Semaphore;

struct World {
    pki: Pki,
    clock: Arc<ManualClock>,
    origin: Arc<Origin>,
    leaf: Leaf,
}

async fn world() -> World {
    let pki = Pki::new();
    let leaf = pki.leaf(&["a.test", "b.test", "c.test", "d.test", "e.test"], KeyAlgorithm::EcPrime256v1);
    World { clock: Arc::new(ManualClock::new()), origin: Origin::start().await, pki, leaf }
}

impl World {
    fn config(&self) -> EdgeConfig {
        config(&self.pki, &self.clock)
    }
}

#[tokio::test]
async fn miss_then_hit_with_age_via_and_only_forwarded_parts() {
    let w = world().await;
    w.origin.route("/page", 200, &[("cache-control", "max-age=60"), ("set-cookie", "s=1")], "hello");
    let edge = start_edge(w.config(), Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let headers = [("x-secret", "1"), ("cookie", "session=abc"), ("x-forwarded-for", "10.1.2.3")];
    let first = viewer.get_with("a.test", "/page?utm=1", &headers).await;
    assert_eq!((first.status, first.text().as_str(), first.x_cache()), (StatusCode::OK, "hello", "Miss from carapace"));
    assert!(first.header("via").contains("carapace"));
    assert!(first.headers.get("set-cookie").is_none(), "Set-Cookie is stripped when cookies are not forwarded");

    let seen = w.origin.seen("/page");
    assert_eq!(seen.uri.query(), None, "query strings are not forwarded by default");
    assert_eq!(seen.headers["host"], w.origin.addr.to_string().as_str(), "the origin's Host");
    assert_eq!(seen.headers["x-forwarded-for"], "10.1.2.3, 127.0.0.1");
    assert!(seen.headers["via"].to_str().unwrap().contains("carapace"));
    assert!(seen.headers.get("x-secret").is_none() && seen.headers.get("cookie").is_none());

    w.clock.advance(Duration::from_secs(5));
    let second = viewer.get("a.test", "/page?other=2").await;
    assert_eq!((second.text().as_str(), second.x_cache()), ("hello", "Hit from carapace"));
    assert_eq!(second.header("age"), "5");
    assert_eq!(w.origin.hits("/page"), 1);

    let head = viewer.request("a.test", Method::HEAD, "/page", &[], "").await.unwrap();
    assert_eq!((head.status, head.x_cache(), head.body.len()), (StatusCode::OK, "Hit from carapace", 0));
    assert_eq!(w.origin.hits("/page"), 1);

    let unknown = viewer.get_with("a.test", "/page", &[("host", "nobody.test")]).await;
    assert_eq!(unknown.status, StatusCode::FORBIDDEN, "a Host no distribution serves");
    edge.stop().await;
}

/// Each CloudFront TTL rule, observed as origin hits at fixed points on a manual clock.
#[tokio::test]
async fn ttl_rules_decide_origin_hits() {
    let w = world().await;
    let o = &w.origin;
    o.route("/silent", 200, &[], "s");
    o.route("/max60", 200, &[("cache-control", "max-age=60")], "m");
    o.route("/max12", 200, &[("cache-control", "max-age=12")], "t");
    o.route("/smaxage", 200, &[("cache-control", "max-age=5, s-maxage=28")], "x");
    o.route("/nostore", 200, &[("cache-control", "no-store")], "n");
    o.route("/private", 200, &[("cache-control", "private, max-age=100")], "p");
    // a.test: default 20 s, maximum 30 s. b.test: minimum 20 s.
    let mut a = dist("a", "a.test", o, &w.leaf);
    a.cache_behavior_settings.default_ttl = Duration::from_secs(20);
    a.cache_behavior_settings.maximum_ttl = Duration::from_secs(30);
    let mut b = dist("b", "b.test", o, &w.leaf);
    b.cache_behavior_settings.minimum_ttl = Duration::from_secs(20);
    let edge = start_edge(w.config(), Snapshot::new([a, b]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let a_paths = ["/silent", "/max60", "/max12", "/smaxage", "/nostore", "/private"];
    let b_paths = ["/nostore", "/max12"];
    let round = |viewer: Viewer| async move {
        let mut labels = Vec::new();
        for path in a_paths {
            labels.push(viewer.get("a.test", path).await.x_cache().trim_end_matches(" from carapace").to_owned());
        }
        for path in b_paths {
            labels.push(viewer.get("b.test", path).await.x_cache().trim_end_matches(" from carapace").to_owned());
        }
        labels
    };
    // t = 0: everything is a miss.
    assert!(round(viewer.clone()).await.iter().all(|l| l == "Miss"));
    // t = 15
    w.clock.advance(Duration::from_secs(15));
    assert_eq!(round(viewer.clone()).await, ["Hit", "Hit", "Miss", "Hit", "Miss", "Miss", "Hit", "Hit"]);
    // t = 25: /silent's default 20 s ran out; /max12 refetched at 15 is fresh until 27;
    // b.test's minimum 20 s ran out for no-store and max-age=12.
    w.clock.advance(Duration::from_secs(10));
    assert_eq!(round(viewer.clone()).await, ["Miss", "Hit", "Hit", "Hit", "Miss", "Miss", "Miss", "Miss"]);
    // t = 35: max-age=60 is clamped to the maximum 30 s; s-maxage=28 ran out.
    w.clock.advance(Duration::from_secs(10));
    assert_eq!(round(viewer.clone()).await, ["Hit", "Miss", "Miss", "Miss", "Miss", "Miss", "Hit", "Hit"]);

    assert_eq!(o.hits("/silent"), 2);
    assert_eq!(o.hits("/max60"), 2);
    assert_eq!(o.hits("/smaxage"), 2);
    assert_eq!(o.hits("/nostore"), 4 + 2, "4 from a.test (never cached), 2 from b.test (minimum TTL)");
    assert_eq!(o.hits("/private"), 4);
    edge.stop().await;
}

#[tokio::test]
async fn stale_entries_revalidate_with_etag_and_last_modified() {
    let w = world().await;
    let o = &w.origin;
    o.route("/etag", 200, &[("cache-control", "max-age=10"), ("etag", "\"v1\"")], "one");
    o.route("/lm", 200, &[("cache-control", "max-age=10"), ("last-modified", "Tue, 01 Dec 2026 08:00:00 GMT")], "lm");
    let edge = start_edge(w.config(), Snapshot::new([dist("a", "a.test", o, &w.leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    assert_eq!(viewer.get("a.test", "/etag").await.x_cache(), "Miss from carapace");
    assert_eq!(viewer.get("a.test", "/lm").await.x_cache(), "Miss from carapace");
    w.clock.advance(Duration::from_secs(20));
    let refreshed = viewer.get("a.test", "/etag").await;
    assert_eq!((refreshed.x_cache(), refreshed.text().as_str()), ("RefreshHit from carapace", "one"));
    assert_eq!(viewer.get("a.test", "/lm").await.x_cache(), "RefreshHit from carapace");
    assert_eq!(o.not_modified.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(o.seen("/etag").headers["if-none-match"], "\"v1\"");
    assert_eq!(o.seen("/lm").headers["if-modified-since"], "Tue, 01 Dec 2026 08:00:00 GMT");
    // The revalidated entry is fresh again.
    assert_eq!(viewer.get("a.test", "/etag").await.x_cache(), "Hit from carapace");
    // A viewer's own matching validator gets a 304 from the cache.
    let not_modified = viewer.get_with("a.test", "/etag", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);

    // Changed content: the origin answers 200, the new body replaces the old.
    o.route("/etag", 200, &[("cache-control", "max-age=10"), ("etag", "\"v2\"")], "two");
    w.clock.advance(Duration::from_secs(20));
    let changed = viewer.get("a.test", "/etag").await;
    assert_eq!((changed.x_cache(), changed.text().as_str()), ("Miss from carapace", "two"));
    assert_eq!(o.hits("/etag"), 3);
    edge.stop().await;
}

#[tokio::test]
async fn concurrent_misses_make_one_origin_fetch() {
    let w = world().await;
    let gate = Arc::new(Semaphore::new(0));
    w.origin.set(
        "/slow",
        Route {
            status: 200,
            headers: vec![("cache-control".into(), "max-age=60".into())],
            body: b"slow".to_vec(),
            hold: Some(gate.clone()),
        },
    );
    let edge = start_edge(w.config(), Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let requests: Vec<_> = (0..8)
        .map(|_| {
            let viewer = viewer.clone();
            tokio::spawn(async move { viewer.get("a.test", "/slow").await })
        })
        .collect();
    // Wait until every request reached the edge and the first reached the origin.
    while edge.edge.counters()[0].1.requests < 8 || w.origin.hits("/slow") < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gate.add_permits(8);
    for request in requests {
        let response = request.await.unwrap();
        assert_eq!((response.status, response.text().as_str()), (StatusCode::OK, "slow"));
    }
    assert_eq!(w.origin.hits("/slow"), 1, "one origin fetch for eight concurrent misses");
    edge.stop().await;
}

#[tokio::test]
async fn stale_is_served_when_the_origin_fails_within_the_bound() {
    let w = world().await;
    w.origin.route("/flaky", 200, &[("cache-control", "max-age=10")], "good");
    let config = EdgeConfig { stale_if_error: Duration::from_secs(60), ..w.config() };
    let edge = start_edge(config, Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    assert_eq!(viewer.get("a.test", "/flaky").await.text(), "good");
    w.origin.route("/flaky", 503, &[], "down");
    w.clock.advance(Duration::from_secs(30));
    let stale = viewer.get("a.test", "/flaky").await;
    assert_eq!((stale.status, stale.text().as_str()), (StatusCode::OK, "good"));
    assert_eq!(stale.header("age"), "30");
    // Past TTL + bound (10 + 60 s) the origin's error goes through.
    w.clock.advance(Duration::from_secs(60));
    let failed = viewer.get("a.test", "/flaky").await;
    assert_eq!((failed.status, failed.text().as_str()), (StatusCode::SERVICE_UNAVAILABLE, "down"));
    assert_eq!(w.origin.hits("/flaky"), 3);
    edge.stop().await;
}

#[tokio::test]
async fn response_timeout_is_504_and_unreachable_origin_is_502() {
    let w = world().await;
    w.origin.set("/hang", Route { status: 200, hold: Some(Arc::new(Semaphore::new(0))), ..Route::default() });
    let mut a = dist("a", "a.test", &w.origin, &w.leaf);
    a.origin.response_timeout = Duration::from_secs(1);
    let mut b = dist("b", "b.test", &w.origin, &w.leaf);
    // A port nothing listens on (bound then dropped).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    b.origin.url = format!("http://{closed}").parse().unwrap();
    let edge = start_edge(w.config(), Snapshot::new([a, b]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    assert_eq!(viewer.get("a.test", "/hang").await.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(viewer.get("b.test", "/x").await.status, StatusCode::BAD_GATEWAY);
    let counters = edge.edge.counters();
    assert!(counters.iter().all(|(_, c)| c.status_5xx == 1 && c.requests == 1));
    edge.stop().await;
}

#[tokio::test]
async fn disabled_methods_root_object_and_custom_errors() {
    let w = world().await;
    let o = &w.origin;
    o.route("/index.html", 200, &[], "root page");
    o.route("/404.html", 200, &[("content-type", "text/html")], "custom not found");
    let mut disabled = dist("a", "a.test", o, &w.leaf);
    disabled.is_enabled = false;
    let mut strict = dist("b", "b.test", o, &w.leaf);
    strict.cache_behavior_settings.allowed_http_methods = Methods::GET_HEAD;
    strict.default_root_object = Some("index.html".into());
    strict.custom_error_responses = vec![CustomErrorResponse {
        error_code: 404,
        response_code: Some(StatusCode::NOT_FOUND),
        response_page_path: Some("/404.html".into()),
        error_caching_min_ttl: Duration::from_secs(300),
    }];
    let edge = start_edge(w.config(), Snapshot::new([disabled, strict]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    assert_eq!(viewer.get("a.test", "/index.html").await.status, StatusCode::FORBIDDEN);
    let post = viewer.request("b.test", Method::POST, "/form", &[], "x=1").await.unwrap();
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert!(post.text().contains("not configured to allow the HTTP request method"));
    assert_eq!(post.x_cache(), "Error from carapace");
    assert_eq!(viewer.get("b.test", "/").await.text(), "root page");

    for _ in 0..2 {
        let missing = viewer.get("b.test", "/missing").await;
        assert_eq!((missing.status, missing.text().as_str()), (StatusCode::NOT_FOUND, "custom not found"));
    }
    assert_eq!((o.hits("/missing"), o.hits("/404.html")), (1, 1), "the error response is cached");
    assert_eq!(o.hits("/form"), 0);
    let b = edge.edge.counters().into_iter().find(|(id, _)| id == "b").unwrap().1;
    assert_eq!((b.requests, b.status_4xx), (4, 3));
    edge.stop().await;
}

#[tokio::test]
async fn per_path_behaviours_and_cached_methods() {
    let w = world().await;
    let o = &w.origin;
    for path in ["/api/list", "/static/app.css", "/page.html", "/opt"] {
        o.route(path, 200, &[("cache-control", "max-age=60")], path);
    }
    let mut cache_all = dist("a", "a.test", o, &w.leaf);
    cache_all.cache_behaviors = vec![PathBehavior { path: "api/*".into(), behavior: Behavior::DontCache }];
    cache_all.cache_behavior_settings.cached_http_methods = Methods::GET_HEAD_OPTIONS;
    let mut cache_none = dist("b", "b.test", o, &w.leaf);
    cache_none.default_cache_behavior = Behavior::DontCache;
    cache_none.cache_behaviors = vec![PathBehavior { path: "*.css".into(), behavior: Behavior::Cache }];
    let edge = start_edge(w.config(), Snapshot::new([cache_all, cache_none]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    for _ in 0..2 {
        viewer.get("a.test", "/api/list").await;
        viewer.get("a.test", "/page.html").await;
        viewer.get("b.test", "/static/app.css").await;
        viewer.get("b.test", "/page.html").await;
        viewer.request("a.test", Method::OPTIONS, "/opt", &[], "").await.unwrap();
        viewer.request("b.test", Method::OPTIONS, "/opt", &[], "").await.unwrap();
    }
    assert_eq!(o.hits("/api/list"), 2, "dont-cache path under a cache default");
    assert_eq!(o.hits("/page.html"), 1 + 2, "cached on a.test, not on b.test");
    assert_eq!(o.hits("/static/app.css"), 1, "cache path under a dont-cache default");
    assert_eq!(o.hits("/opt"), 1 + 2, "OPTIONS cached only where cachedHTTPMethods names it");

    // Uploads pass through, counted as bytes uploaded.
    let post = viewer
        .request("a.test", Method::POST, "/api/list", &[("content-type", "text/plain")], "payload")
        .await
        .unwrap();
    assert_eq!(post.status, StatusCode::OK);
    let seen = o.seen("/api/list");
    assert_eq!(
        (seen.method, &seen.body[..], seen.headers["content-type"].to_str().unwrap()),
        (Method::POST, &b"payload"[..], "text/plain")
    );
    let a = edge.edge.counters().into_iter().find(|(id, _)| id == "a").unwrap().1;
    assert_eq!(a.bytes_uploaded, 7);
    assert_eq!(a.requests, 7);
    assert_eq!(a.bytes_downloaded, 2 * ("/api/list".len() + "/page.html".len() + "/opt".len()) as u64 + 9);
    edge.stop().await;
}

#[tokio::test]
async fn forwarded_query_cookies_and_headers_shape_the_key() {
    let w = world().await;
    let o = &w.origin;
    o.route(
        "/q",
        200,
        &[("cache-control", "max-age=60"), ("set-cookie", "session=new"), ("set-cookie", "track=1")],
        "q",
    );
    let mut a = dist("a", "a.test", o, &w.leaf);
    let s = &mut a.cache_behavior_settings;
    s.forwarded_query_strings = QueryStrings { forward: true, allow_list: vec!["v".into()] };
    s.forwarded_cookies = Forwarded::AllowList(vec!["session".into()]);
    s.forwarded_headers = Forwarded::AllowList(vec!["Accept-Language".into()]);
    let mut b = dist("b", "b.test", o, &w.leaf);
    b.cache_behavior_settings.forwarded_headers = Forwarded::All;
    let edge = start_edge(w.config(), Snapshot::new([a, b]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    let get = |path: &'static str, cookie: &'static str, lang: &'static str| {
        let viewer = viewer.clone();
        async move {
            viewer.get_with("a.test", path, &[("cookie", cookie), ("accept-language", lang), ("x-other", "1")]).await
        }
    };
    let first = get("/q?v=1&x=2", "session=s1; other=o1", "en").await;
    assert_eq!(first.headers.get_all("set-cookie").iter().collect::<Vec<_>>(), ["session=new"]);
    let seen = o.seen("/q");
    assert_eq!(seen.uri.query(), Some("v=1"));
    assert_eq!(seen.headers["cookie"], "session=s1");
    assert_eq!(seen.headers["accept-language"], "en");
    assert!(seen.headers.get("x-other").is_none());

    assert_eq!(get("/q?v=1&x=3", "session=s1; other=o2", "en").await.x_cache(), "Hit from carapace");
    assert_eq!(o.hits("/q"), 1);
    assert_eq!(get("/q?v=2", "session=s1", "en").await.x_cache(), "Miss from carapace");
    assert_eq!(get("/q?v=1", "session=s2", "en").await.x_cache(), "Miss from carapace");
    assert_eq!(get("/q?v=1", "session=s1", "fr").await.x_cache(), "Miss from carapace");
    assert_eq!(o.hits("/q"), 4);

    // Forwarding all headers disables caching, and forwards the viewer's Host.
    for _ in 0..2 {
        viewer.get_with("b.test", "/q", &[("x-other", "1")]).await;
    }
    assert_eq!(o.hits("/q"), 6);
    assert_eq!(o.seen("/q").headers["x-other"], "1");
    assert_eq!(o.seen("/q").headers["host"], "b.test");
    edge.stop().await;
}

#[tokio::test]
async fn purge_drops_one_distribution_only() {
    let w = world().await;
    w.origin.route("/p", 200, &[("cache-control", "max-age=600")], "p");
    let snapshot =
        Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf), dist("b", "b.test", &w.origin, &w.leaf)]).unwrap();
    let edge = start_edge(w.config(), snapshot).await;
    let viewer = Viewer::new(edge.https, &w.pki);

    viewer.get("a.test", "/p").await;
    viewer.get("b.test", "/p").await;
    assert_eq!(w.origin.hits("/p"), 2);
    assert!(edge.edge.purge("a"));
    assert!(!edge.edge.purge("nope"));
    assert_eq!(viewer.get("a.test", "/p").await.x_cache(), "Miss from carapace");
    assert_eq!(viewer.get("b.test", "/p").await.x_cache(), "Hit from carapace");
    assert_eq!(w.origin.hits("/p"), 3);
    edge.stop().await;
}

/// The disk tier: a restarted edge on the same `cache_dir` serves what the first cached
/// (without asking the origin), expired objects are not brought back, a purge removes the
/// distribution's files for good, and the directory stays within its budget.
#[tokio::test]
async fn the_disk_tier_survives_a_restart_and_a_purge_empties_it() {
    let w = world().await;
    w.origin.route("/kept", 200, &[("cache-control", "max-age=600"), ("etag", "\"k\"")], "kept on disk");
    w.origin.route("/short", 200, &[("cache-control", "max-age=5")], "short");
    let dir = tempfile::tempdir().unwrap();
    let with_disk = || EdgeConfig {
        cache_dir: Some(dir.path().to_owned()),
        stale_if_error: std::time::Duration::from_secs(1),
        ..w.config()
    };
    let snapshot = || Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap();
    let edge = start_edge(with_disk(), snapshot()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    assert_eq!(viewer.get("a.test", "/kept").await.x_cache(), "Miss from carapace");
    assert_eq!(viewer.get("a.test", "/short").await.x_cache(), "Miss from carapace");
    // The writes happen on a blocking thread: wait for both files.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while edge.edge.cache_disk_bytes() == 0 || files(dir.path()) < 2 {
        assert!(std::time::Instant::now() < deadline, "nothing written to the disk tier");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    edge.stop().await;

    // A new edge (an empty memory tier) on the same directory, 10 s later.
    w.clock.advance(std::time::Duration::from_secs(10));
    let edge = start_edge(with_disk(), snapshot()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    let kept = viewer.get("a.test", "/kept").await;
    assert_eq!((kept.x_cache(), kept.text().as_str()), ("Hit from carapace", "kept on disk"));
    assert_eq!(w.origin.hits("/kept"), 1, "served from disk after the restart");
    assert_eq!(viewer.get("a.test", "/short").await.x_cache(), "Miss from carapace", "expired: not revived");
    assert_eq!(w.origin.hits("/short"), 2);

    // A purge removes the files: after another restart the origin is asked again.
    assert!(edge.edge.purge("a"));
    assert_eq!(files(dir.path()), 0, "the distribution's files are gone");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_dir(dir.path()).unwrap().flatten().any(|d| d.file_name().to_string_lossy().contains(".purged-"))
    {
        assert!(std::time::Instant::now() < deadline, "the purged directory is never deleted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    edge.stop().await;
    let edge = start_edge(with_disk(), snapshot()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    assert_eq!(viewer.get("a.test", "/kept").await.x_cache(), "Miss from carapace");
    assert_eq!(w.origin.hits("/kept"), 2);
    edge.stop().await;

    // A budget smaller than two objects (each file is 350-450 bytes) keeps at most one.
    let tiny = tempfile::tempdir().unwrap();
    let config = EdgeConfig { cache_dir: Some(tiny.path().to_owned()), cache_dir_bytes: 600, ..w.config() };
    let edge = start_edge(config, snapshot()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    viewer.get("a.test", "/kept").await;
    viewer.get("a.test", "/short").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(edge.edge.cache_disk_bytes() <= 600, "{} bytes on disk", edge.edge.cache_disk_bytes());
    assert!(files(tiny.path()) <= 1);
    edge.stop().await;
}

/// Entry files in the distribution directories of a disk-tier directory (not counting
/// directories already purged and being deleted).
fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir() && !d.file_name().to_string_lossy().contains(".purged-"))
        .map(|d| {
            std::fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .filter(|f| f.path().extension() == Some("entry".as_ref()))
                .count()
        })
        .sum()
}

/// A viewer whose validator matches the origin's response gets 304 even on a miss, and the
/// body still fills the cache for the next viewer.
#[tokio::test]
async fn a_matching_validator_on_a_miss_gets_304_and_still_fills_the_cache() {
    let w = world().await;
    w.origin.route("/v", 200, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")], "versioned");
    let edge = start_edge(w.config(), Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap()).await;
    let viewer = Viewer::new(edge.https, &w.pki);
    let first = viewer.get_with("a.test", "/v", &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((first.status, first.x_cache()), (StatusCode::NOT_MODIFIED, "Miss from carapace"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = viewer.get("a.test", "/v").await;
        if next.x_cache() == "Hit from carapace" {
            assert_eq!(next.text(), "versioned");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the body never reached the cache");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.origin.hits("/v"), 1);
    edge.stop().await;
}

/// Misses stream from a pooled origin connection and leave it pooled: a viewer's response
/// that ends at its `Content-Length` must not drop the origin body before the origin
/// connection has finished it, or every such miss would cost the origin a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_misses_keep_their_origin_connections_pooled() {
    use std::sync::atomic::Ordering;
    let w = world().await;
    let body = "x".repeat(1024);
    w.origin.route("/live", 200, &[("cache-control", "no-store")], &body);
    let edge = start_edge(w.config(), Snapshot::new([dist("a", "a.test", &w.origin, &w.leaf)]).unwrap()).await;
    let viewer = Arc::new(Viewer::new(edge.https, &w.pki));
    for _ in 0..60 {
        let got = viewer.get("a.test", "/live").await;
        assert_eq!((got.status, got.body.len(), got.x_cache()), (StatusCode::OK, 1024, "Miss from carapace"));
    }
    let sequential = w.origin.connections.load(Ordering::Relaxed);
    assert!(sequential <= 2, "60 misses one after another opened {sequential} origin connections");
    // Eight viewers at once: at most about one connection each.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let viewer = viewer.clone();
        tasks.spawn(async move {
            for _ in 0..25 {
                assert_eq!(viewer.get("a.test", "/live").await.body.len(), 1024);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let concurrent = w.origin.connections.load(Ordering::Relaxed) - sequential;
    assert!(concurrent <= 16, "200 misses from 8 viewers opened {concurrent} more origin connections");
    assert_eq!(w.origin.hits("/live"), 260);
    edge.stop().await;
}
