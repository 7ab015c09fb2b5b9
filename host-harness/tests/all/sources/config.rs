//! Source configuration from TOML, and connection strings shown without their password.

use super::*;

#[test]
fn config_parses_from_toml_for_every_kind() {
    #[derive(serde::Deserialize)]
    struct Doc {
        source: SourceConfig,
    }
    let csv: Doc = toml::from_str(
        r#"[source]
kind = "csv"
path = "customers.csv"
primary_key = "id"
delimiter = ";"
[source.types]
id = "integer"
is_vip = "boolean"
"#,
    )
    .unwrap();
    match &csv.source {
        SourceConfig::Csv(c) => {
            assert_eq!(c.delimiter, Some(';'));
            assert_eq!(c.types.get("is_vip"), Some(&TypeHint::Boolean));
        }
        other => panic!("{other:?}"),
    }
    let jsonl: Doc = toml::from_str("[source]\nkind = \"jsonl\"\npath = \"-\"\nprimary_key = \"id\"\n").unwrap();
    assert_eq!(jsonl.source.kind(), "jsonl");
    let sqlite: Doc = toml::from_str(
        "[source]\nkind = \"sqlite\"\npath = \"w.sqlite\"\nquery = \"SELECT * FROM customers\"\nprimary_key = \"id\"\nbatch_size = 50\n",
    )
    .unwrap();
    assert_eq!(sqlite.source.primary_key(), "id");
    let pg: Doc = toml::from_str(
        "[source]\nkind = \"postgres\"\nurl = \"postgresql://bob:hunter2@db/w\"\nquery = \"SELECT 1 AS id\"\nprimary_key = \"id\"\n[source.types]\nid = \"text\"\n",
    )
    .unwrap();
    let debug = format!("{:?}", pg.source);
    assert!(!debug.contains("hunter2"), "Debug leaks the password: {debug}");
    assert!(debug.contains("bob:***@db"), "{debug}");

    // Mistakes are named.
    let e = toml::from_str::<Doc>("[source]\nkind = \"parquet\"\npath = \"x\"\nprimary_key = \"id\"\n").err().unwrap().to_string();
    assert!(e.contains("parquet"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"csv\"\npath = \"x\"\nprimary_key = \"id\"\nqeury = \"x\"\n").err().unwrap().to_string();
    assert!(e.contains("qeury"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"sqlite\"\npath = \"x\"\nprimary_key = \"id\"\n").err().unwrap().to_string();
    assert!(e.contains("query"), "{e}");
    let e = toml::from_str::<Doc>("[source]\nkind = \"csv\"\npath = \"x\"\nprimary_key = \"id\"\n[source.types]\nid = \"int\"\n")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("int") && e.contains("integer"), "{e}");
}

#[test]
fn redaction_of_connection_strings() {
    use host_harness::source::redact_connection_string as r;
    assert_eq!(r("postgresql://bob:s3cret@db:5432/w"), "postgresql://bob:***@db:5432/w");
    assert_eq!(r("postgres://bob@db/w?sslmode=disable&password=s3cret"), "postgres://bob@db/w?sslmode=disable&password=***");
    assert_eq!(r("host=db user=bob password=s3cret dbname=w"), "host=db user=bob password=*** dbname=w");
    assert_eq!(r("host=db password='s3 cret' dbname=w"), "host=db password=*** dbname=w");
}
