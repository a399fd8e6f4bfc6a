use super::*;
use crate::maestro::config::MaestroConfig;
use crate::maestro::rest::Search;
use crate::maestro::rest::fake::{FakeServer, Recorded, Reply};
use crate::names::SourceId;
use pretty_assertions::assert_eq;
use serde_json::Value;

fn client(server: &FakeServer) -> RestClient {
    let source = SourceId::new("mw-client").unwrap();
    let config = MaestroConfig::new("127.0.0.1:1", &server.url(), source).unwrap();
    RestClient::new(&config).unwrap()
}

fn consumer(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

fn bundle(id: &str) -> Value {
    json!({"id": id, "kind": "ResourceBundle", "consumer_name": "cluster1", "version": 1,
               "metadata": {"name": format!("work-{id}")}, "manifests": [],
               "manifest_configs": [], "delete_option": {}})
}

/// Serves `rows` bundles with Maestro's paging: `size` is the count
/// returned and `total` counts every row.
fn paged(rows: usize) -> impl Fn(&Recorded) -> Reply {
    move |r: &Recorded| {
        let q: BTreeMap<_, _> = r.query_pairs().into_iter().collect();
        // The server's defaults when a parameter is not sent.
        let page: usize = q.get("page").map_or(1, |p| p.parse().unwrap());
        let size: usize = q.get("size").map_or(100, |s| s.parse().unwrap());
        let items: Vec<Value> = (0..rows)
            .skip((page - 1) * size)
            .take(size)
            .map(|i| bundle(&format!("b{i}")))
            .collect();
        bundle_page(page, items, rows as i64)
    }
}

/// Every bundle `server` lists, pages followed as `options` say.
async fn list_bundles(server: &FakeServer, options: ListOptions) -> Result<Vec<ResourceBundle>> {
    client(server).list_resource_bundles(&options).await
}

fn pages_of(size: u32) -> ListOptions {
    ListOptions {
        size: Some(size),
        ..ListOptions::default()
    }
}

/// A page of bundles as Maestro lists them.
fn bundle_page(page: usize, items: Vec<Value>, total: i64) -> Reply {
    let body = json!({"kind": "ResourceBundleList", "page": page, "size": items.len(),
                      "total": total, "items": items});
    Reply::json(200, body.to_string())
}

/// Maestro's error reply: HTTP `status`, error `code`, `reason`.
fn maestro_error(status: u16, code: u16, reason: &str) -> Reply {
    let body = json!({"code": format!("maestro-{code}"), "href": format!("/api/maestro/v1/errors/{code}"),
                      "id": code.to_string(), "kind": "Error", "operation_id": "o", "reason": reason});
    Reply::json(status, body.to_string())
}

fn ids(bundles: &[ResourceBundle]) -> Vec<&str> {
    bundles.iter().map(|b| b.id.as_str()).collect()
}

#[tokio::test]
async fn listing_follows_pages_until_a_short_one_with_exact_queries() {
    let server = FakeServer::start(paged(5)).await;
    let search = Search::source(&SourceId::new("mw-client").unwrap())
        .consumer(&ConsumerName::new("cluster1").unwrap())
        .build();
    let options = ListOptions {
        search: Some(search),
        ..pages_of(2)
    };
    let all = list_bundles(&server, options).await.unwrap();
    assert_eq!(ids(&all), ["b0", "b1", "b2", "b3", "b4"]);
    let requests = server.requests();
    let queries: Vec<_> = requests.iter().map(|r| r.query.clone().unwrap()).collect();
    let q = |page| {
        format!(
            "search=source%3D%27mw-client%27+and+consumer_name%3D%27cluster1%27\
                 &page={page}&size=2&orderBy=id"
        )
    };
    assert_eq!(queries, [q(1), q(2), q(3)]);
    assert!(
        requests
            .iter()
            .all(|r| r.method == "GET" && r.path == "/api/maestro/v1/resource-bundles")
    );
}

#[tokio::test]
async fn listing_stops_at_total_without_asking_for_an_empty_page() {
    let server = FakeServer::start(paged(4)).await;
    let all = list_bundles(&server, pages_of(2)).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn listing_from_a_later_page_counts_the_skipped_rows_toward_total() {
    let server = FakeServer::start(paged(4)).await;
    let options = ListOptions {
        page: Some(2),
        ..pages_of(2)
    };
    let all = list_bundles(&server, options).await.unwrap();
    assert_eq!(ids(&all), ["b2", "b3"]);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn listing_defaults_to_400_ordered_by_id_and_keeps_a_given_order() {
    let server = FakeServer::start(paged(1)).await;
    let c = client(&server);
    c.list_resource_bundles(&ListOptions::default())
        .await
        .unwrap();
    let options = ListOptions {
        size: Some(1_000_000),
        order_by: Some("created_at desc".into()),
        ..ListOptions::default()
    };
    c.list_consumers(&options).await.unwrap();
    let queries: Vec<_> = server.requests().iter().map(|r| r.query_pairs()).collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        queries[0],
        pairs(&[("page", "1"), ("size", "400"), ("orderBy", "id")])
    );
    assert_eq!(
        queries[1],
        pairs(&[
            ("page", "1"),
            ("size", "65500"),
            ("orderBy", "created_at desc")
        ])
    );
    assert_eq!(server.requests()[1].path, "/api/maestro/v1/consumers");
}

fn page_of(ids: &[&str], total: i64) -> Page<Consumer> {
    serde_json::from_value(json!({
        "kind": "ConsumerList", "page": 1, "size": ids.len(), "total": total,
        "items": ids.iter().map(|id| json!({"id": id, "name": id})).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[tokio::test]
async fn paging_counts_every_request_a_failed_one_included() {
    let pages = [page_of(&["a", "b"], 5), page_of(&["b", "c"], 5)];
    let listed = follow_pages("consumers", 1, 2, MAX_PAGES, |n: u32| {
        let page = pages.get(n as usize - 1).cloned();
        async move { page.ok_or_else(|| Error::Unavailable("down".into())) }
    })
    .await;
    assert_eq!(listed.requests, 3);
    assert!(matches!(listed.items, Err(Error::Unavailable(_))));

    let listed = follow_pages("consumers", 1, 2, MAX_PAGES, |n: u32| {
        let page = pages
            .get(n as usize - 1)
            .cloned()
            .unwrap_or(page_of(&["d"], 5));
        async move { Ok(page) }
    })
    .await;
    assert_eq!(listed.requests, 3);
    let ids: Vec<_> = listed.items.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, ["a", "b", "c", "d"], "the repeated row dropped");
}

#[tokio::test]
async fn paging_gives_up_on_a_server_that_keeps_returning_full_pages() {
    let listed = follow_pages("consumers", 1, 1, 4, |n: u32| async move {
        Ok(page_of(&[&n.to_string()], 1_000_000))
    })
    .await;
    assert_eq!(listed.requests, 4);
    let e = listed.items.unwrap_err();
    assert!(e.to_string().contains("gave up after 4 full pages"), "{e}");
}

#[tokio::test]
async fn page_size_zero_is_refused_before_any_request() {
    let server = FakeServer::start(paged(1)).await;
    let e = list_bundles(&server, pages_of(0)).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_server_returning_full_pages_forever_is_a_protocol_error() {
    let server =
        FakeServer::start(|_: &Recorded| bundle_page(1, vec![bundle("same")], i64::MAX)).await;
    let e = client(&server)
        .list_all::<ResourceBundle>(RESOURCE_BUNDLES, &pages_of(1), 3)
        .await
        .unwrap_err();
    let Error::Protocol(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("after 3 full pages"), "{m}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn rows_repeated_across_pages_are_kept_once() {
    let server = FakeServer::start(|r: &Recorded| {
        let page = if r.query.as_deref().unwrap_or("").contains("page=1") {
            vec![bundle("a"), bundle("b")]
        } else {
            vec![bundle("b")]
        };
        bundle_page(1, page, 3)
    })
    .await;
    let all = list_bundles(&server, pages_of(2)).await.unwrap();
    assert_eq!(ids(&all), ["a", "b"]);
}

#[tokio::test]
async fn one_page_sends_only_the_options_given() {
    let server = FakeServer::start(paged(3)).await;
    let page = client(&server)
        .list_resource_bundles_page(&ListOptions::search("name='x'"))
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (3, 3));
    assert_eq!(
        server.requests()[0].query.as_deref(),
        Some("search=name%3D%27x%27")
    );
}

#[tokio::test]
async fn get_bundle_decodes_the_reference_example() {
    let fixture = include_str!("../../../../tests/fixtures/rest/bundle.json");
    let server = FakeServer::start(move |_: &Recorded| Reply::json(200, fixture)).await;
    let id: ResourceId = "55c61e54-a3f6-563d-9fec-b1fe297bdfdb".parse().unwrap();
    let b = client(&server).get_resource_bundle(&id).await.unwrap();
    assert_eq!(b.resource_id(), Some(id));
    assert_eq!(b.status.unwrap().conditions.len(), 2);
    assert_eq!(
        server.requests()[0].path,
        "/api/maestro/v1/resource-bundles/55c61e54-a3f6-563d-9fec-b1fe297bdfdb"
    );
}

fn not_found(what: &str) -> Reply {
    maestro_error(404, 7, &format!("{what} not found"))
}

#[tokio::test]
async fn missing_bundle_is_not_found_naming_the_id_or_none() {
    let server = FakeServer::start(|_: &Recorded| not_found("Resource with id='x'")).await;
    let id = ResourceId::for_work(&SourceId::new("s").unwrap(), "c", "w");
    let c = client(&server);
    let e = c.get_resource_bundle(&id).await.unwrap_err();
    let Error::NotFound(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains(&id.to_string()), "{m}");
    assert_eq!(c.find_resource_bundle(&id).await.unwrap(), None);
}

#[tokio::test]
async fn deleting_a_bundle_accepts_204_and_maestro_not_found() {
    let server = FakeServer::start(|r: &Recorded| {
        if r.path.ends_with("00000000-0000-0000-0000-000000000000") {
            not_found("Resource")
        } else {
            Reply::empty(204)
        }
    })
    .await;
    let c = client(&server);
    let id = ResourceId::for_work(&SourceId::new("s").unwrap(), "c", "w");
    c.delete_resource_bundle(&id).await.unwrap();
    c.delete_resource_bundle(&ResourceId(uuid::Uuid::nil()))
        .await
        .unwrap();
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.clone()),
        ("DELETE", format!("/api/maestro/v1/resource-bundles/{id}"))
    );
}

#[tokio::test]
async fn deleting_at_an_unknown_path_is_not_mistaken_for_success() {
    let server = FakeServer::start(|_: &Recorded| {
            Reply::json(
                404,
                r#"{"type":"Error","id":"404","href":"/api/maestro/v1/errors/404","code":"maestro-404","reason":"The requested resource doesn't exist"}"#,
            )
        })
        .await;
    let id = ResourceId::for_work(&SourceId::new("s").unwrap(), "c", "w");
    let e = client(&server)
        .delete_resource_bundle(&id)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
}

fn consumer_json(name: &str, labels: Value) -> String {
    json!({"id": "3f28c601", "kind": "Consumer", "href": "/api/maestro/v1/consumers/3f28c601",
               "name": name, "labels": labels, "created_at": "2023-12-08T11:35:08.557450505Z",
               "updated_at": "2023-12-08T11:35:08.557450505Z"})
    .to_string()
}

#[tokio::test]
async fn create_consumer_posts_name_and_labels() {
    let server = FakeServer::start(|r: &Recorded| {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        Reply::json(
            201,
            consumer_json(body["name"].as_str().unwrap(), body["labels"].clone()),
        )
    })
    .await;
    let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    let c = client(&server)
        .create_consumer(&consumer("cluster1"), &labels)
        .await
        .unwrap();
    assert_eq!((c.name.as_str(), c.labels.clone()), ("cluster1", labels));
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/api/maestro/v1/consumers")
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(sent, json!({"name": "cluster1", "labels": {"env": "prod"}}));
}

#[tokio::test]
async fn duplicate_consumer_is_a_conflict() {
    let server =
        FakeServer::start(|_: &Recorded| maestro_error(409, 6, "This Consumer already exists"))
            .await;
    let e = client(&server)
        .create_consumer(&consumer("cluster1"), &BTreeMap::new())
        .await
        .unwrap_err();
    let Error::Conflict(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains("POST /api/maestro/v1/consumers"), "{m}");
    let sent: Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(sent, json!({"name": "cluster1"}));
}

#[tokio::test]
async fn patching_labels_sends_the_whole_map_even_when_empty() {
    let server =
        FakeServer::start(|_: &Recorded| Reply::json(200, consumer_json("c1", json!(null)))).await;
    let c = client(&server)
        .patch_consumer_labels("3f28c601", &BTreeMap::new())
        .await
        .unwrap();
    assert!(c.labels.is_empty());
    let r = &server.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("PATCH", "/api/maestro/v1/consumers/3f28c601")
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"labels": {}})
    );
}

#[tokio::test]
async fn find_consumer_by_name_searches_and_matches_exactly() {
    let server = FakeServer::start(|r: &Recorded| {
        let search = r
            .query_pairs()
            .into_iter()
            .find(|(k, _)| k == "search")
            .unwrap()
            .1;
        let items = if search == "name='cluster1'" {
            format!("[{}]", consumer_json("cluster1", json!({})))
        } else {
            "[]".into()
        };
        Reply::json(
            200,
            format!(r#"{{"kind":"ConsumerList","page":1,"size":1,"total":1,"items":{items}}}"#),
        )
    })
    .await;
    let c = client(&server);
    let found = c
        .find_consumer_by_name(&consumer("cluster1"))
        .await
        .unwrap();
    assert_eq!(found.map(|c| c.id), Some("3f28c601".to_string()));
    let missing = c.find_consumer_by_name(&consumer("other")).await.unwrap();
    assert!(missing.is_none());
    assert_eq!(
        server.requests()[0].query.as_deref(),
        Some("search=name%3D%27cluster1%27&page=1&size=2")
    );
}

#[tokio::test]
async fn deleting_a_consumer_in_use_is_forbidden_with_the_reason_and_unknown_is_fine() {
    let server = FakeServer::start(|r: &Recorded| match r.path.rsplit('/').next() {
            Some("busy") => maestro_error(
                403,
                4,
                r#"Unable to delete Consumer: ERROR: update or delete on table "consumers" violates foreign key constraint "fk_resources_consumers" on table "resources" (SQLSTATE 23503)"#,
            ),
            Some("racing") => maestro_error(
                500,
                9,
                r#"Unable to delete Consumer: violates foreign key constraint "fk_resources_consumers""#,
            ),
            Some("gone") => not_found("Consumer"),
            _ => Reply::empty(204),
        })
        .await;
    let c = client(&server);
    c.delete_consumer("3f28c601").await.unwrap();
    c.delete_consumer("gone").await.unwrap();
    for id in ["busy", "racing"] {
        let e = c.delete_consumer(id).await.unwrap_err();
        let Error::Forbidden(m) = &e else {
            panic!("{id}: {e:?}")
        };
        assert!(
            m.contains(&format!("consumer {id} still has resource bundles")),
            "{m}"
        );
    }
    assert_eq!(server.requests()[0].method, "DELETE");
}

#[tokio::test]
async fn get_consumer_maps_forbidden_and_dot_ids_are_refused() {
    let server =
        FakeServer::start(|_: &Recorded| maestro_error(403, 4, "Forbidden to perform this action"))
            .await;
    let c = client(&server);
    assert!(matches!(
        c.get_consumer("x").await.unwrap_err(),
        Error::Forbidden(_)
    ));
    for bad in ["", ".", ".."] {
        assert!(
            matches!(c.get_consumer(bad).await.unwrap_err(), Error::Config(_)),
            "{bad:?}"
        );
    }
    assert_eq!(server.requests().len(), 1);
}
