//! The feature flag as pure functions: environment words, `feature_flags.json` contents,
//! explicit overrides, and their order.

use perf_producer::flag::{env_value_is_on, file_says_on, resolve, Environment};

#[test]
fn env_words_on_in_any_case_everything_else_off() {
    for on in ["1", "true", "TRUE", "True", "on", "ON", "oN"] {
        assert!(env_value_is_on(on), "{on}");
    }
    for off in [
        "0", "false", "off", "", "yes", "2", " true", "true ", "enabled", "1.0",
    ] {
        assert!(!env_value_is_on(off), "{off:?}");
    }
}

#[test]
fn json_true_false_missing_garbled() {
    assert!(file_says_on(r#"{"enablePerformanceMetrics": true}"#));
    assert!(file_says_on(
        r#"{"_version": 4, "disableLogAggregation": false, "enablePerformanceMetrics": true}"#
    ));
    assert!(!file_says_on(r#"{"enablePerformanceMetrics": false}"#));
    assert!(!file_says_on(r#"{"enableOEMMode": true}"#));
    assert!(!file_says_on(r#"{"enablePerformanceMetrics": "true"}"#));
    assert!(!file_says_on(r#"{"enablePerformanceMetrics": 1}"#));
    assert!(!file_says_on(r#"{"enablePerformanceMetrics": null}"#));
    assert!(!file_says_on(r#"[{"enablePerformanceMetrics": true}]"#));
    assert!(!file_says_on(r#"{"enablePerformanceMetrics": tru"#));
    assert!(!file_says_on(""));
    assert!(!file_says_on("\u{0}\u{ff}garbage"));
}

#[test]
fn explicit_wins_then_env_when_set_then_file_then_off() {
    let on = Some(r#"{"enablePerformanceMetrics": true}"#);
    let off = Some(r#"{"enablePerformanceMetrics": false}"#);
    assert!(!resolve(None, None, None));
    assert!(resolve(None, None, on));
    assert!(!resolve(None, None, off));
    // The variable wins when set, either way, even set to something meaningless.
    assert!(resolve(None, Some("true"), off));
    assert!(!resolve(None, Some("false"), on));
    assert!(!resolve(None, Some(""), on));
    // An explicit choice wins over both.
    assert!(resolve(Some(true), Some("0"), off));
    assert!(!resolve(Some(false), Some("1"), on));
}

#[test]
fn environment_reads_the_file_under_its_config_dir() {
    let dir = tempfile::tempdir().unwrap();
    let env = Environment {
        flag: None,
        config_dir: dir.path().to_path_buf(),
        shm_dir: dir.path().join("rings"),
    };
    // Missing file: off.
    assert!(!env.flag_enabled(None));
    let file = dir.path().join("feature_flags.json");
    std::fs::write(&file, r#"{"enablePerformanceMetrics": true}"#).unwrap();
    assert!(env.flag_enabled(None));
    assert!(!env.flag_enabled(Some(false)));
    std::fs::write(&file, "{not json").unwrap();
    assert!(!env.flag_enabled(None));
    assert!(env.flag_enabled(Some(true)));
    std::fs::write(&file, r#"{"enablePerformanceMetrics": true}"#).unwrap();
    let env_off = Environment {
        flag: Some("off".into()),
        ..env.clone()
    };
    assert!(!env_off.flag_enabled(None));
}
