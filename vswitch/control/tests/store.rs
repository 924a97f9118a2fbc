//! Persistence: round trip, atomic replacement, a missing file, corrupt
//! files named with their line, and I/O errors named with their path.

use std::fs;
use std::path::PathBuf;
use vswitch_control::{DesiredState, StateDir, StoreError};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vswitch-control-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn example(name: &str) -> DesiredState {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    DesiredState::from_yaml(&fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn saved_states_load_back_equal_and_replace_the_old_file() {
    let dir = scratch("roundtrip");
    let store = StateDir::new(dir.join("nested"));
    assert!(store.load().unwrap().is_none(), "nothing saved yet");
    for name in ["routed.yaml", "bridge.yaml", "vlan.yaml"] {
        let s = example(name);
        store.save(&s).unwrap();
        assert_eq!(store.load().unwrap().as_ref(), Some(&s), "{name}");
        let files: Vec<String> =
            fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(files, ["state.yaml"], "no temporary file left behind");
    }
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(text.starts_with("# vswitch desired state"), "{text}");
    assert_eq!(store.path(), dir.join("nested").join("state.yaml"));
    store.save(&DesiredState::default()).unwrap();
    assert_eq!(store.load().unwrap(), Some(DesiredState::default()));
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_corrupt_file_is_an_error_naming_the_file_and_line() {
    let dir = scratch("corrupt");
    fs::create_dir_all(&dir).unwrap();
    let store = StateDir::new(&dir);
    let path = store.path();
    fs::write(&path, "interfaces:\n  - name: a\n    type: pg\n    mtuu: 1500\n").unwrap();
    let e = store.load().unwrap_err();
    let StoreError::Parse { path: p, error } = &e else { panic!("{e}") };
    assert_eq!((p, error.line), (&path, Some(4)));
    assert!(e.to_string().starts_with(&format!("{}:4: interfaces[0]: unknown field `mtuu`", path.display())), "{e}");
    fs::write(&path, "interfaces: [\n  { name: a, type: pg },\n  oops: [\n").unwrap();
    let e = store.load().unwrap_err();
    let StoreError::Parse { error, .. } = &e else { panic!("{e}") };
    assert!(error.line.is_some(), "{e}");
    assert!(e.to_string().starts_with(&format!("{}:", path.display())), "{e}");
    fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let e = store.load().unwrap_err();
    assert!(matches!(e, StoreError::Io { .. }), "not UTF-8: {e}");
    assert!(e.to_string().starts_with(&path.display().to_string()), "{e}");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn io_errors_name_the_path() {
    let dir = scratch("io");
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-dir");
    fs::write(&file, "x").unwrap();
    let store = StateDir::new(&file);
    let e = store.save(&DesiredState::default()).unwrap_err();
    let StoreError::Io { path, .. } = &e else { panic!("{e}") };
    assert_eq!(path, &file);
    assert!(e.to_string().starts_with(&file.display().to_string()), "{e}");
    fs::remove_dir_all(dir).unwrap();
}
