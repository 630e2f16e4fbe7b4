//! Any bytes as a `.snap` file: read through insta and parsed as a structure, or
//! refused with an error naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: {
        // insta's YAML reader panics on some malformed headers; wsreplay catches that
        // (`snapshot::read` turns it into an error) but libFuzzer's hook would abort
        // first. Panics anywhere else still abort and count as findings.
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_insta = info.location().is_some_and(|l| l.file().contains("/insta-"));
            if !in_insta {
                libfuzzer_hook(info);
            }
        }));
    },
    |data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("wsreplay-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("fuzz.snap");
    std::fs::write(&path, data).unwrap();
    match wsreplay::structure::snapshot::read_structure(&path) {
        Ok(Some(structure)) => {
            let rendered = structure.render();
            let again = wsreplay::structure::Structure::parse(&rendered).expect("re-parses");
            assert_eq!(again.render(), rendered);
        }
        Ok(None) => unreachable!("the file exists"),
        Err(e) => assert!(e.to_string().contains("fuzz.snap"), "{e}"),
    }
});
