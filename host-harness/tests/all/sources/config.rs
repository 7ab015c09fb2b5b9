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

#[test]
fn budget_parses_from_toml_and_keys_left_out_keep_their_defaults() {
    #[derive(serde::Deserialize)]
    struct Doc {
        source: SourceConfig,
    }
    let doc: Doc = toml::from_str("[source]\nkind = \"csv\"\npath = \"x.csv\"\nprimary_key = \"id\"\n[source.budget]\nmax_cell_bytes = 1024\n").unwrap();
    assert_eq!(
        *doc.source.budget(),
        InputBudget { max_cell_bytes: 1024, max_row_bytes: 1024 * 1024, chunk_bytes: 4 * 1024 * 1024 }
    );
    let e = toml::from_str::<Doc>("[source]\nkind = \"csv\"\npath = \"x.csv\"\nprimary_key = \"id\"\n[source.budget]\nmax_cel_bytes = 1\n")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("max_cel_bytes"), "{e}");
}

#[test]
fn a_zero_budget_is_refused_at_open_naming_the_key() {
    let dir = TempDir::new("budget");
    let p = dir.file("t.csv", b"id\n1\n");
    let e = open_err(&with_budget(csv_cfg(&p, "id", &[]), 0, 1024)).to_string();
    assert_eq!(e, "source configuration: `budget.max_cell_bytes` is 0; set a positive number of bytes or leave it out for the default");
}
