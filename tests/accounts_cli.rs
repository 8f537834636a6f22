//! Accounts and contacts through the real binary, on both stores: `tend
//! import accounts`, contacts naming their account and roles, every kind of
//! bad row, `tend accounts`, `tend account show`, and `POST
//! /api/v1/accounts` over a real socket.

mod common;

use common::daemon::Daemon;
use common::{Project, free_port, json, on_fresh_postgres};

const CONFIG: &str = r#"
[http]
api_token = "s3cret-token"

[accounts]
roles = ["admin", "billing", "technical", "champion", "user"]

[[team]]
id = "maria"
name = "Maria Costa"
email = "maria@acme.example"
signature = "Maria Costa, Customer Success"

[[team]]
id = "tom"
name = "Tom Berg"
email = "tom@acme.example"
"#;

const ACCOUNTS_CSV: &str = "\
id,name,plan,renewal_at,health,owner,region
globex,Globex Corporation,enterprise,2027-01-31,72,maria,eu
initech,Initech,team,,,tom,us
umbrella,Umbrella,team,,101,mario,eu
,No Id,team,,,,
";

const CONTACTS_CSV: &str = "\
id,email,name,account_id,roles[]
hank,hank@globex.example,Hank Scorpio,globex,admin;champion
homer,homer@globex.example,Homer Simpson,globex,technical
bill,bill@globex.example,Bill Lumbergh,globex,billing
peter,peter@initech.example,Peter Gibbons,initech,
milton,milton@hooli.example,Milton,hooli,user
rex,rex@example.com,Rex,globex,biling
solo,solo@example.com,Solo,,
";

/// A project on SQLite, or on a fresh PostgreSQL database when `pg` names one.
fn project(pg: Option<&str>) -> Project {
    let p = Project::new(CONFIG);
    match pg {
        Some(url) => p.env("TEND__DATABASE__URL", url),
        None => p,
    }
}

fn accounts_and_contacts_are_imported_and_shown(p: &Project) {
    p.file("accounts.csv", ACCOUNTS_CSV);
    let run = p
        .tend(&["import", "accounts", "accounts.csv"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 2, updated 0, rejected 2\n");
    let errors = run.stderr();
    assert!(
        errors.contains(
            "accounts.csv:4: health \"101\" is not a whole number from 0 to 100; owner \"mario\" is not a team member; use one of maria, tom, or add them to [[team]] in the config"
        ),
        "{errors}"
    );
    assert!(
        errors.contains("accounts.csv:5: id is missing; every row needs one"),
        "{errors}"
    );

    p.file("contacts.csv", CONTACTS_CSV);
    let run = p
        .tend(&["import", "customers", "contacts.csv"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 6, updated 0, rejected 1\n");
    let notes = run.stderr();
    assert!(
        notes.contains("contacts.csv:7: role \"biling\" is not declared; use one of admin, billing, technical, champion, user, or add it to [accounts] roles in the config"),
        "{notes}"
    );
    assert!(
        notes.contains("contacts.csv:6: warning: account \"hooli\" was not known, so it was created with only its id"),
        "{notes}"
    );
    assert_eq!(notes.lines().count(), 2, "{notes}");

    let accounts = json(&p.tend(&["accounts", "--format", "json"]).expect_code(0));
    let listed: Vec<(&str, u64)> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["id"].as_str().unwrap(), a["contacts"].as_u64().unwrap()))
        .collect();
    assert_eq!(listed, [("globex", 3), ("hooli", 1), ("initech", 1)]);
    let globex = &accounts[0];
    assert_eq!(globex["name"], "Globex Corporation");
    assert_eq!(globex["owner"], "maria");
    assert_eq!(globex["health"], 72);
    assert_eq!(globex["attributes"]["region"], "eu");
    assert_eq!(globex["renewal_at"], "2027-01-31T00:00:00Z");

    let shown = json(
        &p.tend(&["account", "show", "globex", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(shown["owner"]["name"], "Maria Costa");
    assert_eq!(shown["owner"]["email"], "maria@acme.example");
    let contacts: Vec<(&str, Vec<&str>)> = shown["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["roles"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        contacts,
        [
            ("bill", vec!["billing"]),
            ("hank", vec!["admin", "champion"]),
            ("homer", vec!["technical"]),
        ]
    );
    let table = p.tend(&["account", "show", "globex"]).expect_code(0);
    assert!(
        table.stdout().contains("Maria Costa <maria@acme.example>"),
        "{}",
        table.stdout()
    );
    let missing = p.tend(&["account", "show", "nobody"]).expect_code(1);
    assert!(
        missing
            .stderr()
            .contains("no account has id \"nobody\"; `tend accounts` lists them"),
        "{}",
        missing.stderr()
    );

    // A re-import fills in the account the contact created, and --strict
    // refuses a contact of an account nobody imported.
    p.file(
        "more.jsonl",
        "{\"id\": \"hooli\", \"name\": \"Hooli\", \"owner\": \"tom\", \"attributes\": {\"tier\": \"gold\"}}\n",
    );
    let run = p.tend(&["import", "accounts", "more.jsonl"]).expect_code(0);
    assert_eq!(run.stdout(), "imported 0, updated 1, rejected 0\n");
    p.file(
        "strict.csv",
        "id,email,account_id\nzed,zed@example.com,vandelay\nann,ann@example.com,hooli\n",
    );
    let run = p
        .tend(&["import", "customers", "strict.csv", "--strict"])
        .expect_code(1);
    assert_eq!(run.stdout(), "imported 1, updated 0, rejected 1\n");
    assert!(
        run.stderr()
            .contains("strict.csv:2: account_id \"vandelay\" names no account, and a strict import rejects such rows"),
        "{}",
        run.stderr()
    );
    let hooli = json(
        &p.tend(&["account", "show", "hooli", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(hooli["account"]["name"], "Hooli");
    assert_eq!(hooli["account"]["contacts"], 2);
    let accounts = json(&p.tend(&["accounts", "--format", "json"]).expect_code(0));
    assert_eq!(
        accounts.as_array().unwrap().len(),
        3,
        "vandelay was not created"
    );
}

#[test]
fn accounts_and_contacts_on_sqlite() {
    accounts_and_contacts_are_imported_and_shown(&project(None));
}

#[tokio::test]
async fn accounts_and_contacts_on_postgres() {
    on_fresh_postgres(|url| accounts_and_contacts_are_imported_and_shown(&project(Some(url))))
        .await;
}

#[test]
fn the_api_takes_accounts_with_the_same_rules() {
    let p = project(None);
    let d = Daemon::start(&p, free_port(), &[]);
    let auth = [
        ("Authorization", "Bearer s3cret-token"),
        ("Content-Type", "application/json"),
    ];
    let body = br#"[{"id": "globex", "name": "Globex", "owner": "maria", "health": 80},
                    {"id": "initech", "owner": "bob"}]"#;
    let reply = d.request("POST", "/api/v1/accounts", &auth, body);
    assert_eq!(reply.status, 422, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["imported"], 1);
    assert_eq!(answer["rejected"], 1);
    assert_eq!(answer["errors"][0]["line"], 2);
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("owner \"bob\" is not a team member"),
        "{answer}"
    );
    let contact = br#"[{"id": "hank", "email": "hank@globex.example", "account_id": "globex", "roles": ["admin"]},
                       {"id": "lone", "email": "lone@example.com", "account_id": "nowhere"}]"#;
    let reply = d.request("POST", "/api/v1/customers", &auth, contact);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["imported"], 2);
    assert!(
        answer["warnings"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("account \"nowhere\" was not known"),
        "{answer}"
    );
    let strict = d.request(
        "POST",
        "/api/v1/customers?strict=true",
        &auth,
        br#"[{"id": "zed", "email": "zed@example.com", "account_id": "vandelay"}]"#,
    );
    assert_eq!(strict.status, 422, "{}", strict.body);
    assert!(
        strict.json()["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(
                "account_id \"vandelay\" names no account, and a strict import rejects such rows"
            ),
        "{}",
        strict.body
    );
    let typo = d.request("POST", "/api/v1/customers?strcit=1", &auth, contact);
    assert_eq!(typo.status, 400, "{}", typo.body);
    assert!(
        typo.body.contains("the only one is strict=true"),
        "{}",
        typo.body
    );
    let python = d.request("POST", "/api/v1/customers?strict=True", &auth, contact);
    assert_eq!(python.status, 200, "{}", python.body);
    let unauthorized_typo = d.request("POST", "/api/v1/customers?strcit=1", &[], contact);
    assert_eq!(unauthorized_typo.status, 401, "authorization comes first");
    let unauthorized = d.request("POST", "/api/v1/accounts", &[], body);
    assert_eq!(unauthorized.status, 401);
    let shown = json(
        &p.tend(&["account", "show", "globex", "--format", "json"])
            .expect_code(0),
    );
    assert_eq!(shown["contacts"][0]["id"], "hank");
    // The read API: one person's timeline.
    let hank = d.request("GET", "/api/v1/customers/hank", &auth, b"");
    assert_eq!(hank.status, 200, "{}", hank.body);
    assert_eq!(hank.json()["account"]["id"], "globex");
    assert_eq!(hank.json()["customer"]["email"], "hank@globex.example");
    let nobody = d.request("GET", "/api/v1/customers/nobody", &auth, b"");
    assert_eq!(nobody.status, 404, "{}", nobody.body);
    assert!(
        nobody.body.contains("no customer has id"),
        "{}",
        nobody.body
    );
    let anonymous = d.request("GET", "/api/v1/customers/hank", &[], b"");
    assert_eq!(anonymous.status, 401);
    let globex = d.request("GET", "/api/v1/accounts/globex", &auth, b"");
    assert_eq!(globex.status, 200, "{}", globex.body);
    assert_eq!(globex.json()["owner"]["name"], "Maria Costa");
    assert_eq!(globex.json()["contacts"][0]["id"], "hank");
    let none = d.request("GET", "/api/v1/accounts/initech", &auth, b"");
    assert_eq!(none.status, 404, "initech was refused above: {}", none.body);
    assert_eq!(
        d.request("GET", "/api/v1/accounts/globex", &[], b"").status,
        401
    );
}
