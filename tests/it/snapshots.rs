//! The regression gate of this repository: every recording in `recordings/` is
//! replayed against the in-process demo system and its structure asserted against
//! `snapshots/<name>.snap` with insta. A change fails `cargo test`; an intended change
//! is accepted with `cargo insta review`. Teams do the same in their own harness repo
//! with their own build instead of the demo backend (see README).

use wsreplay::recording::Recording;
use wsreplay::structure::Observation;

use crate::support::*;

#[tokio::test]
async fn every_recording_matches_its_snapshot() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/recordings");
    let files = wsreplay::gate::check::expand(&[dir.into()]).unwrap();
    assert!(
        !files.is_empty(),
        "recordings/ should hold at least the demo recording"
    );
    for file in files {
        let recording = Recording::read(&file).unwrap();
        let (report, run) = replay_demo(&recording, |_| {}, vec![], None).await;
        assert!(report.problems.is_empty(), "{}", report.render());
        let structure = Observation::of(&run).render(&Observation::of(&recording).hints());
        let name = wsreplay::structure::snapshot::name_of(&file);
        insta::with_settings!({ snapshot_path => "../../snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, structure.render());
        });
    }
}
