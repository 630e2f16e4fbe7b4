//! The demo system recorded through the proxy on all four hops, as a user would record
//! a real frontend → backend → agents system.

use wsreplay::recording::summary::summarize;
use wsreplay::recording::Dir;

use crate::support::record_demo as record;

#[tokio::test]
async fn every_hop_is_recorded_with_the_counts_the_peers_saw() {
    let (rec, reports) = record(1, 3).await;
    let report = &reports[0];
    assert!(report.passed(), "{:?}", report.problems);
    let conns = summarize(&rec);
    let routes: Vec<_> = conns.iter().map(|c| c.route.as_str()).collect();
    assert_eq!(routes, ["frontend", "nlp", "data", "viz"]);
    let frontend = &conns[0];
    assert_eq!(frontend.count(Dir::ClientToServer), report.sent as u64);
    assert_eq!(frontend.count(Dir::ServerToClient), report.received as u64);
    for (event, n) in &report.events {
        assert_eq!(
            frontend.count_of(Dir::ServerToClient, event),
            *n as u64,
            "{event}"
        );
    }
    for (agent, request, response) in [
        (&conns[1], "nlp_query", "nlp_query_response"),
        (&conns[2], "sql_query", "sql_query_response"),
        (&conns[3], "generate_chart", "chart_generation_response"),
    ] {
        assert_eq!(
            agent.count_of(Dir::ClientToServer, request),
            3,
            "{}",
            agent.route
        );
        assert_eq!(
            agent.count_of(Dir::ServerToClient, response),
            3,
            "{}",
            agent.route
        );
    }
    assert!(conns
        .iter()
        .all(|c| c.end.as_ref().is_some_and(|e| !e.how.is_abnormal())));
}

#[tokio::test]
async fn ten_parallel_frontends_lose_nothing() {
    let (rec, reports) = record(10, 2).await;
    assert!(reports.iter().all(|r| r.passed()));
    let conns = summarize(&rec);
    let frontends: Vec<_> = conns.iter().filter(|c| c.route == "frontend").collect();
    assert_eq!(frontends.len(), 10);
    let sent: u64 = reports.iter().map(|r| r.sent as u64).sum();
    let received: u64 = reports.iter().map(|r| r.received as u64).sum();
    assert_eq!(
        frontends
            .iter()
            .map(|c| c.count(Dir::ClientToServer))
            .sum::<u64>(),
        sent
    );
    assert_eq!(
        frontends
            .iter()
            .map(|c| c.count(Dir::ServerToClient))
            .sum::<u64>(),
        received
    );
    // One shared backend→agent connection per agent carries all 20 requests.
    for agent in conns.iter().filter(|c| c.route != "frontend") {
        assert_eq!(agent.count(Dir::ClientToServer), 20, "{}", agent.route);
        assert_eq!(agent.count(Dir::ServerToClient), 20, "{}", agent.route);
    }
}
