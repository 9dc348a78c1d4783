//! The SAM template (`template.yaml`) against the workspace: every function
//! crate under `functions/` is deployed by exactly one template function and
//! every template function builds a crate; and the template passes cfn-lint
//! (`scripts/lint-template.sh`). The crate check reads the template line by
//! line (the tests crate has no YAML parser, on purpose): the reader below
//! understands just the layout `template.yaml` uses, and fails loudly when
//! it finds nothing. The checks of alarms, concurrency, the state machine
//! and the database users read it as data, decoded by cfn-lint's own loader
//! from `.venv` (which the lint needs anyway).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

/// Functions the template already deploys whose crates have not landed yet.
/// Remove a name when its crate lands under `functions/`: the test fails while
/// a listed crate exists, so this list cannot go stale, and it stays strict
/// about everything else.
const PLANNED_FUNCTIONS: &[&str] = &[];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// One `AWS::Serverless::Function` of the template, as the line reader saw it.
#[derive(Debug, Default)]
struct TemplateFunction {
    line: usize,
    code_uri: Option<String>,
    binary: Option<String>,
    build_method: Option<String>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `key: value` on a line, without a trailing comment or quotes.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix(key)?.strip_prefix(':')?;
    let rest = match rest.find(" #") {
        Some(comment) => &rest[..comment],
        None => rest,
    };
    Some(rest.trim().trim_matches(|c| c == '"' || c == '\''))
}

/// The serverless functions of the template by logical id: resources are the
/// keys indented by two under the top-level `Resources:`; a function is one
/// whose `Type:` (indented by four) is `AWS::Serverless::Function`.
fn template_functions(template: &str) -> BTreeMap<String, TemplateFunction> {
    let mut functions = BTreeMap::new();
    let mut in_resources = false;
    let mut current: Option<(String, TemplateFunction, bool)> = None;
    let mut finish = |current: &mut Option<(String, TemplateFunction, bool)>| {
        if let Some((id, function, true)) = current.take() {
            functions.insert(id, function);
        }
    };
    for (index, line) in template.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match indent(line) {
            0 => {
                finish(&mut current);
                in_resources = trimmed.trim_end() == "Resources:";
            }
            2 if in_resources => {
                finish(&mut current);
                let id = trimmed.trim_end().trim_end_matches(':').to_string();
                current = Some((
                    id,
                    TemplateFunction {
                        line: index + 1,
                        ..TemplateFunction::default()
                    },
                    false,
                ));
            }
            depth => {
                let Some((_, function, is_function)) = current.as_mut() else {
                    continue;
                };
                if depth == 4 && value_of(line, "Type") == Some("AWS::Serverless::Function") {
                    *is_function = true;
                }
                if let Some(v) = value_of(line, "CodeUri") {
                    function.code_uri = Some(v.to_string());
                }
                if let Some(v) = value_of(line, "Binary") {
                    function.binary = Some(v.to_string());
                }
                if let Some(v) = value_of(line, "BuildMethod") {
                    function.build_method = Some(v.to_string());
                }
            }
        }
    }
    finish(&mut current);
    functions
}

/// The function crates: directories under `functions/` with a `Cargo.toml`,
/// each checked to name its package after its directory (the binary SAM's
/// `Binary` names is the package's default binary).
fn function_crates(root: &Path) -> BTreeSet<String> {
    let dir = root.join("functions");
    let mut crates = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&manifest).expect("read the crate's Cargo.toml");
        // The first `name = "..."` is [package]'s: it comes first in every crate here.
        let package = text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("name")?.trim_start();
            Some(rest.strip_prefix('=')?.trim().trim_matches('"'))
        });
        assert_eq!(
            package,
            Some(name.as_str()),
            "{} must name its package after its directory ({name}): template.yaml's Binary is the package's binary",
            manifest.display()
        );
        crates.insert(name);
    }
    crates
}

#[test]
fn every_function_crate_is_in_the_template_and_back() {
    let root = repo_root();
    let template = std::fs::read_to_string(root.join("template.yaml")).expect("read template.yaml");
    let functions = template_functions(&template);
    assert!(
        functions.len() >= 5,
        "the line reader found only {functions:?} in template.yaml: did its layout change?"
    );

    let mut deployed = BTreeSet::new();
    for (id, function) in &functions {
        let at = format!("template.yaml:{} ({id})", function.line);
        assert_eq!(
            function.build_method.as_deref(),
            Some("rust-cargolambda"),
            "{at}: Metadata.BuildMethod must be rust-cargolambda"
        );
        let binary = function
            .binary
            .clone()
            .unwrap_or_else(|| panic!("{at}: Metadata.BuildProperties.Binary is missing"));
        assert_eq!(
            function.code_uri.as_deref(),
            Some(format!("functions/{binary}").as_str()),
            "{at}: CodeUri must be the crate of its Binary"
        );
        assert!(
            deployed.insert(binary.clone()),
            "{at}: {binary} is deployed twice"
        );
    }

    let crates = function_crates(&root);
    let planned: BTreeSet<String> = PLANNED_FUNCTIONS.iter().map(|s| s.to_string()).collect();
    let landed: Vec<&String> = planned.intersection(&crates).collect();
    assert!(
        landed.is_empty(),
        "{landed:?} now have crates under functions/: remove them from PLANNED_FUNCTIONS in tests/tests/it/template.rs"
    );
    let without_function: Vec<&String> = crates.difference(&deployed).collect();
    assert!(
        without_function.is_empty(),
        "function crates with no AWS::Serverless::Function in template.yaml: {without_function:?}"
    );
    let without_crate: BTreeSet<String> = deployed.difference(&crates).cloned().collect();
    assert_eq!(
        without_crate, planned,
        "template functions without a crate under functions/ must be exactly PLANNED_FUNCTIONS"
    );
}

#[test]
fn every_function_runs_rust_on_provided_al2023() {
    let template =
        std::fs::read_to_string(repo_root().join("template.yaml")).expect("read template.yaml");
    let globals: Vec<&str> = template
        .lines()
        .skip_while(|line| line.trim_end() != "Globals:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
        .collect();
    for expected in [
        "Runtime: provided.al2023",
        "Handler: bootstrap",
        "Architectures: [!Ref Architecture]",
    ] {
        assert!(
            globals.iter().any(|line| line.trim() == expected),
            "Globals.Function must set {expected}"
        );
    }
    for key in ["Runtime:", "Handler:", "Architectures:"] {
        let count = template
            .lines()
            .filter(|line| line.trim_start().starts_with(key))
            .count();
        assert_eq!(
            count, 1,
            "{key} must be set once, in Globals, for every function alike"
        );
    }
}

#[test]
fn the_template_passes_cfn_lint() {
    let script = repo_root().join("scripts/lint-template.sh");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------
// The template as data: alarms, reserved concurrency, the reconcile state
// machine, the database users, the proxy (issue 15, items 7 to 10)
// ---------------------------------------------------------------------------

/// `template.yaml` decoded by cfn-lint's own loader (the `.venv` the lint
/// uses), so that the YAML tags become their JSON forms (`!Ref X` is
/// `{"Ref": "X"}`, `!GetAtt X.Y` is `{"Fn::GetAtt": ["X", "Y"]}`).
fn template_json() -> &'static Value {
    static TEMPLATE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        let output = Command::new(&python)
            .arg("-c")
            .arg(
                "import json, sys\n\
                 from cfnlint.decode import decode\n\
                 template, problems = decode(sys.argv[1])\n\
                 if problems:\n    sys.exit('\\n'.join(str(p) for p in problems))\n\
                 print(json.dumps(template))",
            )
            .arg(root.join("template.yaml"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): run scripts/setup.sh, which creates .venv with cfn-lint",
                    python.display()
                )
            });
        assert!(
            output.status.success(),
            "decoding template.yaml failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the decoded template is JSON")
    })
}

fn resources() -> &'static serde_json::Map<String, Value> {
    template_json()["Resources"].as_object().expect("Resources")
}

/// Logical ids of the resources of a type.
fn of_type(kind: &str) -> Vec<&'static str> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// The alarms on `namespace`/`metric` with a dimension equal to `dimension`
/// (as a single metric, or as one of a metric-math alarm's metrics).
fn alarms_on(namespace: &str, metric: &str, dimension: &Value) -> Vec<&'static str> {
    let matches = |m: &Value| {
        m["Namespace"] == namespace
            && m["MetricName"] == metric
            && m["Dimensions"]
                .as_array()
                .is_some_and(|ds| ds.iter().any(|d| d == dimension))
    };
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .filter(|(_, r)| {
            let p = &r["Properties"];
            matches(p)
                || p["Metrics"].as_array().is_some_and(|metrics| {
                    metrics.iter().any(|m| matches(&m["MetricStat"]["Metric"]))
                })
        })
        .map(|(id, _)| id.as_str())
        .collect()
}

/// Every alarm notifies the alarm topic when one is given.
fn assert_notifies(alarm: &str) {
    assert_eq!(
        resources()[alarm]["Properties"]["AlarmActions"],
        json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}),
        "{alarm} must notify AlarmTopicArn"
    );
}

#[test]
fn every_function_has_errors_and_throttles_alarms() {
    let functions = of_type("AWS::Serverless::Function");
    assert_eq!(functions.len(), 9, "{functions:?}");
    for function in functions {
        let dimension = json!({"Name": "FunctionName", "Value": {"Ref": function}});
        for metric in ["Errors", "Throttles"] {
            let alarms = alarms_on("AWS/Lambda", metric, &dimension);
            assert!(
                !alarms.is_empty(),
                "{function} has no alarm on AWS/Lambda {metric}"
            );
            for alarm in alarms {
                let p = &resources()[alarm]["Properties"];
                assert_eq!(p["Threshold"], json!(0), "{alarm}");
                assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{alarm}");
                assert_notifies(alarm);
            }
        }
    }
}

#[test]
fn every_queue_has_an_age_alarm() {
    let queues = of_type("AWS::SQS::Queue");
    assert_eq!(queues.len(), 10, "five queues and their DLQs: {queues:?}");
    for queue in queues {
        let dimension = json!({"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}});
        let alarms = alarms_on("AWS/SQS", "ApproximateAgeOfOldestMessage", &dimension);
        assert_eq!(
            alarms.len(),
            1,
            "{queue} needs one ApproximateAgeOfOldestMessage alarm"
        );
        let p = &resources()[alarms[0]]["Properties"];
        assert_eq!(p["Statistic"], "Maximum");
        if queue.ends_with("DeadLetterQueue") {
            // Before the 14-day retention drops what nobody handled.
            let retention = &resources()[queue]["Properties"]["MessageRetentionPeriod"];
            assert!(p["Threshold"].as_i64().unwrap() < retention.as_i64().unwrap());
        } else {
            assert_eq!(p["Threshold"], json!({"Ref": "QueueAgeAlarmSeconds"}));
            // A failed message comes back after the visibility timeout: an
            // alarm below it would fire on every retry.
            let minimum = &template_json()["Parameters"]["QueueAgeAlarmSeconds"]["MinValue"];
            assert!(minimum.as_i64().unwrap() > 0);
            let default = &template_json()["Parameters"]["QueueAgeAlarmSeconds"]["Default"];
            let visibility = &resources()[queue]["Properties"]["VisibilityTimeout"];
            assert!(default.as_i64().unwrap() > visibility.as_i64().unwrap());
        }
        assert_notifies(alarms[0]);
    }
}

#[test]
fn the_api_backfill_and_reconcile_have_reserved_concurrency() {
    for (function, parameter) in [
        ("AnalyticsApiFunction", "ApiReservedConcurrency"),
        ("BackfillFunction", "BackfillReservedConcurrency"),
        ("ReconcileFunction", "ReconcileReservedConcurrency"),
    ] {
        let p = &resources()[function]["Properties"];
        assert_eq!(
            p["ReservedConcurrentExecutions"],
            json!({"Ref": parameter}),
            "{function}"
        );
        let declared = &template_json()["Parameters"][parameter];
        assert_eq!(declared["Type"], "Number", "{parameter}");
        assert!(declared["MinValue"].as_i64() >= Some(1), "{parameter}");
        assert!(declared["Default"].as_i64() >= Some(1), "{parameter}");
    }
    // The loaders are bounded by their mappings instead.
    for function in of_type("AWS::Serverless::Function") {
        let events = &resources()[function]["Properties"]["Events"];
        if let Some(queue) = events.get("Queue") {
            assert!(
                queue["Properties"]["ScalingConfig"]["MaximumConcurrency"].is_object(),
                "{function}: its SQS mapping needs a MaximumConcurrency"
            );
        }
    }
    // The API's statement time limit is below its timeout.
    let api = &resources()["AnalyticsApiFunction"]["Properties"];
    let limit: u64 = api["Environment"]["Variables"]["API_STATEMENT_TIME_LIMIT_MS"]
        .as_str()
        .and_then(|ms| ms.parse().ok())
        .expect("API_STATEMENT_TIME_LIMIT_MS in milliseconds");
    assert!(limit > 0 && limit < api["Timeout"].as_u64().unwrap() * 1000);
}

/// Runs the reconcile state machine's definition (the subset of the
/// States Language it uses: Task with ResultSelector, ResultPath, Retry and
/// Catch; Choice; Pass with Parameters and States.MathAdd; Succeed; Fail)
/// with `invoke` standing for the Lambda call: `Ok(answer)` or
/// `Err(error name)`. Returns the final state's name and the invocations.
fn run_state_machine(
    definition: &Value,
    mut invoke: impl FnMut(&Value) -> Result<Value, String>,
) -> (String, usize) {
    fn path<'a>(value: &'a Value, path: &str) -> &'a Value {
        let rest = path.strip_prefix('$').expect("a JSONPath");
        rest.split('.')
            .filter(|k| !k.is_empty())
            .fold(value, |v, k| &v[k])
    }
    fn build(template: &Value, input: &Value) -> Value {
        let mut out = serde_json::Map::new();
        for (key, value) in template.as_object().expect("an object") {
            match key.strip_suffix(".$") {
                Some(name) => {
                    let text = value.as_str().unwrap();
                    let resolved = match text.strip_prefix("States.MathAdd(") {
                        Some(args) => {
                            let (a, b) = args.trim_end_matches(')').split_once(',').unwrap();
                            json!(
                                path(input, a.trim()).as_i64().unwrap()
                                    + b.trim().parse::<i64>().unwrap()
                            )
                        }
                        None => path(input, text).clone(),
                    };
                    out.insert(name.to_string(), resolved);
                }
                None if value.is_object() => {
                    out.insert(key.clone(), build(value, input));
                }
                None => {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        Value::Object(out)
    }
    fn put(mut input: Value, result_path: Option<&str>, result: Value) -> Value {
        match result_path {
            None | Some("$") => result,
            Some(p) => {
                let key = p.strip_prefix("$.").expect("a top-level ResultPath");
                input[key] = result;
                input
            }
        }
    }
    let states = &definition["States"];
    let mut name = definition["StartAt"].as_str().unwrap().to_string();
    let mut data = json!({"detail-type": "Scheduled Event", "detail": {}});
    let mut invocations = 0;
    for _ in 0..10_000 {
        let state = &states[&name];
        match state["Type"].as_str().unwrap() {
            "Task" => {
                let payload = build(&state["Parameters"], &data)["Payload"].clone();
                invocations += 1;
                match invoke(&payload) {
                    Ok(answer) => {
                        let result = build(&state["ResultSelector"], &json!({"Payload": answer}));
                        data = put(data, state["ResultPath"].as_str(), result);
                        name = state["Next"].as_str().unwrap().to_string();
                    }
                    Err(error) => {
                        let catcher = state["Catch"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find(|c| {
                                c["ErrorEquals"]
                                    .as_array()
                                    .unwrap()
                                    .iter()
                                    .any(|e| e == "States.ALL" || e == error.as_str())
                            })
                            .unwrap_or_else(|| panic!("{name} catches no {error}"));
                        let caught = json!({"Error": error, "Cause": "the test's failure"});
                        data = put(data, catcher["ResultPath"].as_str(), caught);
                        name = catcher["Next"].as_str().unwrap().to_string();
                    }
                }
            }
            "Pass" => {
                data = build(&state["Parameters"], &data);
                name = state["Next"].as_str().unwrap().to_string();
            }
            "Choice" => {
                let chosen = state["Choices"].as_array().unwrap().iter().find(|c| {
                    let v = path(&data, c["Variable"].as_str().unwrap());
                    if let Some(b) = c.get("BooleanEquals") {
                        v == b
                    } else if let Some(n) = c.get("NumericGreaterThanEquals") {
                        v.as_f64().unwrap() >= n.as_f64().unwrap()
                    } else {
                        panic!("a choice rule the test does not know: {c}")
                    }
                });
                name = chosen
                    .map(|c| &c["Next"])
                    .unwrap_or(&state["Default"])
                    .as_str()
                    .unwrap()
                    .to_string();
            }
            "Succeed" | "Fail" => return (name, invocations),
            other => panic!("a state type the test does not know: {other}"),
        }
    }
    panic!("the state machine did not end")
}

#[test]
fn the_reconcile_state_machine_catches_errors_and_is_bounded() {
    let machine = &resources()["ReconcileStateMachine"]["Properties"];
    let definition = &machine["Definition"];
    let states = definition["States"].as_object().unwrap();
    // Every task catches every error into a Fail state.
    for (name, state) in states.iter().filter(|(_, s)| s["Type"] == "Task") {
        let catch = state["Catch"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Catch"));
        assert!(
            catch
                .iter()
                .any(|c| c["ErrorEquals"] == json!(["States.ALL"])
                    && states[c["Next"].as_str().unwrap()]["Type"] == "Fail"),
            "{name} must catch States.ALL into a Fail state"
        );
    }
    assert!(definition["TimeoutSeconds"]
        .as_u64()
        .is_some_and(|t| t <= 86_400));

    // A run that never finishes stops at the bound, in a Fail state.
    let (end, invocations) =
        run_state_machine(definition, |_| Ok(json!({"done": false, "runId": 7})));
    assert_eq!(states[&end]["Type"], "Fail", "{end}");
    assert_eq!(invocations, 48);
    // A run done at the third invocation succeeds, continuing its runId.
    let mut seen = Vec::new();
    let (end, invocations) = run_state_machine(definition, |payload| {
        seen.push(payload.clone());
        Ok(json!({"done": seen.len() == 3, "runId": 7}))
    });
    assert_eq!(
        (states[&end]["Type"].as_str(), invocations),
        (Some("Succeed"), 3)
    );
    assert_eq!(seen[0]["detail-type"], "Scheduled Event");
    assert_eq!(seen[1], json!({"runId": 7}));
    // A failing invocation, first or later, ends in the Fail state.
    for failing_at in [1, 2] {
        let mut calls = 0;
        let (end, _) = run_state_machine(definition, |_| {
            calls += 1;
            if calls == failing_at {
                Err("Lambda.Unknown".to_string())
            } else {
                Ok(json!({"done": false, "runId": 7}))
            }
        });
        assert_eq!(states[&end]["Type"], "Fail", "{end}");
    }

    // An unsuccessful execution is an alarm.
    let dimension = json!({"Name": "StateMachineArn", "Value": {"Ref": "ReconcileStateMachine"}});
    for metric in ["ExecutionsFailed", "ExecutionsTimedOut"] {
        let alarms = alarms_on("AWS/States", metric, &dimension);
        assert_eq!(alarms.len(), 1, "{metric}");
        assert_notifies(alarms[0]);
    }
}

#[test]
fn each_function_connects_as_its_own_database_user() {
    let parameters = &template_json()["Parameters"];
    assert!(
        parameters.get("DbUser").is_none(),
        "one user for every function is gone"
    );
    for user in ["DbLoaderUser", "DbApiUser", "DbMigratorUser"] {
        assert_eq!(parameters[user]["Type"], "String", "{user}");
    }
    let globals = &template_json()["Globals"]["Function"]["Environment"]["Variables"];
    assert_eq!(globals["DB_USER"], json!({"Ref": "DbLoaderUser"}));
    let api = &resources()["AnalyticsApiFunction"]["Properties"];
    assert_eq!(
        api["Environment"]["Variables"]["DB_USER"],
        json!({"Ref": "DbApiUser"})
    );
    // Each role may connect as its function's user only.
    let policy_user = |policy: &str| -> String {
        let text = resources()[policy]["Properties"]["PolicyDocument"].to_string();
        ["DbLoaderUser", "DbApiUser", "DbMigratorUser"]
            .into_iter()
            .filter(|u| text.contains(&format!("${{{u}}}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(policy_user("DatabaseConnectPolicy"), "DbLoaderUser");
    assert_eq!(policy_user("ApiDatabaseConnectPolicy"), "DbApiUser");
    assert_eq!(policy_user("MigratorConnectPolicy"), "DbMigratorUser");
    for function in of_type("AWS::Serverless::Function") {
        let role = resources()[function]["Properties"]["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{function}: Role is !GetAtt <role>.Arn"));
        let managed = &resources()[role]["Properties"]["ManagedPolicyArns"];
        let connects: Vec<&str> = managed
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["Ref"].as_str())
            .filter(|p| p.ends_with("ConnectPolicy"))
            .collect();
        let expected = if function == "AnalyticsApiFunction" {
            "ApiDatabaseConnectPolicy"
        } else {
            "DatabaseConnectPolicy"
        };
        assert_eq!(connects, [expected], "{function} ({role})");
    }
    // The API's SELECT-only function answers no route that writes: the
    // erasure (DELETE) is served by its own function, as a user that may.
    let routes = |function: &str| -> Vec<(String, String)> {
        resources()[function]["Properties"]["Events"]
            .as_object()
            .unwrap()
            .values()
            .filter(|e| e["Type"] == "HttpApi")
            .map(|e| {
                let p = &e["Properties"];
                (
                    p["Method"].as_str().unwrap().to_string(),
                    p["Path"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let api_routes = routes("AnalyticsApiFunction");
    assert!(
        !api_routes.is_empty() && api_routes.iter().all(|(method, _)| method == "GET"),
        "{api_routes:?}"
    );
    assert_eq!(
        routes("EraseViewerFunction"),
        [(
            "DELETE".to_string(),
            "/tenants/{tenantId}/viewers/{viewerId}".to_string()
        )]
    );
    let erase = &resources()["EraseViewerFunction"]["Properties"];
    assert!(erase["Environment"]["Variables"].get("DB_USER").is_none());
    assert_eq!(
        erase["Events"]["ForgetViewer"]["Properties"]["Auth"]["Authorizer"],
        "WarehouseJwt"
    );
    // Through the proxy, each user has its secret.
    let auth = resources()["DbProxy"]["Properties"]["Auth"]
        .as_array()
        .unwrap();
    let secrets: Vec<&Value> = auth.iter().map(|a| &a["SecretArn"]).collect();
    assert_eq!(
        secrets,
        [
            &json!({"Ref": "DbProxySecretArn"}),
            &json!({"Ref": "DbProxyApiSecretArn"})
        ]
    );
    // The defaults are the users docs/DEPLOY.md creates.
    let deploy =
        std::fs::read_to_string(repo_root().join("docs/DEPLOY.md")).expect("docs/DEPLOY.md");
    for user in ["DbLoaderUser", "DbApiUser", "DbMigratorUser"] {
        let name = parameters[user]["Default"].as_str().unwrap();
        assert!(
            deploy.contains(&format!("TO '{name}'@'%'")),
            "docs/DEPLOY.md grants nothing to {name} ({user}'s default)"
        );
    }
}

#[test]
fn the_proxy_is_watched_for_pinned_connections_and_keeps_the_sql_mode() {
    let alarms = alarms_on(
        "AWS/RDS",
        "DatabaseConnectionsCurrentlySessionPinned",
        &json!({"Name": "ProxyName", "Value": {"Ref": "DbProxy"}}),
    );
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    let alarm = &resources()[alarms[0]];
    assert_eq!(alarm["Condition"], "RdsProxyEnabled");
    assert_notifies(alarms[0]);
    // The bound is the concurrency the template allows.
    let bound = alarm["Properties"]["Metrics"].to_string();
    for parameter in [
        "LoaderMaximumConcurrency",
        "AttendanceMaximumConcurrency",
        "ApiReservedConcurrency",
        "BackfillReservedConcurrency",
        "ReconcileReservedConcurrency",
    ] {
        assert!(
            bound.contains(&format!("${{{parameter}}}")),
            "the bound must count {parameter}: {bound}"
        );
    }
    // Every connection the proxy opens gets the sql_mode the escaping
    // relies on, and the lock wait unpinned sessions cannot SET.
    let init = resources()["DbProxyTargetGroup"]["Properties"]["ConnectionPoolConfigurationInfo"]
        ["InitQuery"]
        .as_str()
        .expect("an InitQuery");
    assert!(
        init.contains(&format!("sql_mode = '{}'", shared::store::SESSION_SQL_MODE)),
        "{init}"
    );
    assert!(init.contains("innodb_lock_wait_timeout"), "{init}");
}

/// docs/RUNBOOK.md's section headings (`## alarm: …`, `## situation: …`).
fn runbook_sections() -> BTreeSet<String> {
    let runbook =
        std::fs::read_to_string(repo_root().join("docs/RUNBOOK.md")).expect("docs/RUNBOOK.md");
    runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.trim().to_string())
        .collect()
}

#[test]
fn every_alarm_names_a_runbook_section_that_exists() {
    let sections = runbook_sections();
    let alarms = of_type("AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 30, "{alarms:?}");
    let mut named = BTreeSet::new();
    for alarm in alarms {
        let description = resources()[alarm]["Properties"]["AlarmDescription"]
            .as_str()
            .unwrap_or_else(|| panic!("{alarm} has no AlarmDescription"));
        let section = description
            .split_once("Runbook: docs/RUNBOOK.md, \"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(section, _)| section)
            .unwrap_or_else(|| {
                panic!("{alarm}: its description must end with Runbook: docs/RUNBOOK.md, \"alarm: …\": {description}")
            });
        assert!(
            section.starts_with("alarm: ") && sections.contains(section),
            "{alarm} names {section:?}, which docs/RUNBOOK.md has no '## {section}' for"
        );
        named.insert(section.to_string());
    }
    // And no alarm section is left over from an alarm that is gone.
    let alarm_sections: BTreeSet<String> = sections
        .into_iter()
        .filter(|s| s.starts_with("alarm: "))
        .collect();
    assert_eq!(named, alarm_sections);
}

#[test]
fn the_dashboard_shows_what_on_call_watches() {
    let dashboard = &resources()["OnCallDashboard"]["Properties"];
    // The body is a !Sub of JSON: parse it with the substitutions left as
    // they are, and check that every reference names a resource.
    let body = dashboard["DashboardBody"]["Fn::Sub"]
        .as_str()
        .expect("DashboardBody is a !Sub of JSON");
    let parsed: Value = serde_json::from_str(body).expect("the dashboard body is JSON");
    let mut references = BTreeSet::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        references.insert(rest[start + 2..end].split('.').next().unwrap().to_string());
        rest = &rest[end..];
    }
    for reference in &references {
        assert!(
            reference.starts_with("AWS::") || resources().contains_key(reference),
            "the dashboard names {reference}, which template.yaml does not define"
        );
    }
    let widgets = parsed["widgets"].as_array().expect("widgets");
    let text = body.to_string();
    // Ingest per data point, the age and depth of every queue and DLQ.
    for queue in of_type("AWS::SQS::Queue") {
        assert!(
            references.contains(queue),
            "{queue} is not on the dashboard"
        );
    }
    for metric in [
        "NumberOfMessagesDeleted",
        "ApproximateAgeOfOldestMessage",
        "ApproximateNumberOfMessagesVisible",
    ] {
        assert!(text.contains(metric), "{metric}");
    }
    // The loaders' errors, throttles and duration.
    for function in of_type("AWS::Serverless::Function") {
        if function.starts_with("Load") {
            for metric in ["\"Errors\"", "\"Throttles\"", "\"Duration\""] {
                let on = widgets.iter().any(|w| {
                    let metrics = w["properties"]["metrics"].to_string();
                    metrics.contains(metric) && metrics.contains(&format!("${{{function}}}"))
                });
                assert!(on, "{function} {metric} is not on the dashboard");
            }
        }
    }
    // Reconcile's discrepancies, the API's latency and 5xx.
    assert!(text.contains("SUM(Discrepancies) FROM SCHEMA(Warehouse, DataPoint, Kind)"));
    for metric in ["\"Latency\"", "\"5xx\""] {
        assert!(
            text.contains(metric) && text.contains("${AnalyticsHttpApi}"),
            "{metric}"
        );
    }
}

/// The S3 statements of a role's inline policies that name `bucket` (the
/// viewer export bucket's logical id).
fn statements_on_bucket(role: &str, bucket: &str) -> Vec<&'static Value> {
    resources()[role]["Properties"]["Policies"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().iter())
        .filter(|s| s["Resource"].to_string().contains(bucket))
        .collect()
}

#[test]
fn the_viewer_export_bucket_is_encrypted_private_and_empties_itself_daily() {
    let bucket = "ViewerExportBucket";
    assert_eq!(resources()[bucket]["Type"], "AWS::S3::Bucket");
    let p = &resources()[bucket]["Properties"];
    // Encrypted at rest.
    let rules = p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        .as_array()
        .expect("BucketEncryption");
    assert!(
        rules.iter().all(|r| {
            let algorithm = &r["ServerSideEncryptionByDefault"]["SSEAlgorithm"];
            algorithm == "AES256" || algorithm == "aws:kms" || algorithm == "aws:kms:dsse"
        }) && !rules.is_empty(),
        "{rules:?}"
    );
    // Never public, by ACL or by policy.
    let block = &p["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting], json!(true), "{setting}");
    }
    // Every file is deleted a day after it was written: an enabled rule
    // without a filter (it applies to the whole bucket).
    let lifecycle = p["LifecycleConfiguration"]["Rules"].as_array().unwrap();
    assert!(
        lifecycle.iter().any(|r| r["Status"] == "Enabled"
            && r["ExpirationInDays"] == json!(1)
            && r.get("Prefix").is_none()
            && r.get("TagFilters").is_none()),
        "{lifecycle:?}"
    );
    // Reached over TLS only.
    let policies: Vec<&str> = of_type("AWS::S3::BucketPolicy")
        .into_iter()
        .filter(|id| resources()[*id]["Properties"]["Bucket"] == json!({"Ref": bucket}))
        .collect();
    assert_eq!(policies.len(), 1, "{policies:?}");
    let statements = &resources()[policies[0]]["Properties"]["PolicyDocument"]["Statement"];
    assert!(
        statements
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
        "{statements}"
    );

    // The read function is told the bucket, and its role may write files
    // under the exports' folder and read them (the URLs it signs), nothing
    // else; no other role touches the bucket.
    let api = &resources()["AnalyticsApiFunction"]["Properties"];
    assert_eq!(
        api["Environment"]["Variables"][shared::handlers::VIEWER_EXPORT_BUCKET],
        json!({"Ref": bucket})
    );
    let statements = statements_on_bucket("AnalyticsApiRole", bucket);
    assert_eq!(statements.len(), 1, "{statements:?}");
    let statement = statements[0];
    assert_eq!(statement["Effect"], "Allow");
    let actions: BTreeSet<&str> = statement["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from([
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:GetObject"
        ])
    );
    assert_eq!(
        statement["Resource"],
        json!({"Fn::Sub": format!("${{{bucket}.Arn}}/{}*", shared::handlers::EXPORT_FOLDER)})
    );
    for role in of_type("AWS::IAM::Role") {
        if role != "AnalyticsApiRole" {
            assert!(
                !resources()[role].to_string().contains(bucket),
                "{role} reaches the viewer export bucket"
            );
        }
    }
}

#[test]
fn the_export_route_goes_to_the_read_function_behind_the_jwt_authorizer() {
    let events = resources()["AnalyticsApiFunction"]["Properties"]["Events"]
        .as_object()
        .unwrap();
    let path = "/tenants/{tenantId}/presentations/{presentationId}/viewers/export";
    let routes: Vec<&Value> = events
        .values()
        .filter(|e| e["Properties"]["Path"] == path)
        .collect();
    assert_eq!(routes.len(), 1, "{events:?}");
    let route = routes[0];
    let timeline = events
        .values()
        .find(|e| {
            e["Properties"]["Path"]
                .as_str()
                .is_some_and(|p| p.ends_with("/timeline"))
        })
        .expect("the timeline route");
    // As the timeline: the HTTP API with its default (JWT) authorizer,
    // payload 2.0; no authorizer of its own that could open it.
    assert_eq!(route["Type"], "HttpApi");
    assert_eq!(route["Properties"]["Method"], "GET");
    for same in ["ApiId", "PayloadFormatVersion"] {
        assert_eq!(
            route["Properties"][same], timeline["Properties"][same],
            "{same}"
        );
    }
    assert!(route["Properties"].get("Auth").is_none(), "{route}");
    let api = &resources()["AnalyticsHttpApi"]["Properties"];
    assert_eq!(api["Auth"]["DefaultAuthorizer"], "WarehouseJwt");
}
