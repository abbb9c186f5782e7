//! The runbook's monitoring in Bicep: every alert it asks for exists, measures what it names
//! against a threshold parameter whose default is the runbook's number, and notifies the action
//! group, whose e-mail is a deployment parameter; the availability test probes readiness from
//! several regions; the workbook charts what the runbook watches.

use crate::bicep::{BicepFile, Resource, declared, infra_files};

/// (what the runbook asks, resource type, text the alert's criteria contain, threshold
/// parameter of `alerts.bicep`, its default)
const RUNBOOK_ALERTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "request duration p95 under 1000 ms",
        "Microsoft.Insights/scheduledQueryRules",
        "percentile(duration, 95)",
        "requestDurationP95Ms",
        "1000",
    ),
    (
        "failed requests under 1 %",
        "Microsoft.Insights/scheduledQueryRules",
        "countif(success == false)",
        "failedRequestPercent",
        "1",
    ),
    (
        "availability over 99 %",
        "Microsoft.Insights/metricAlerts",
        "availabilityResults/availabilityPercentage",
        "availabilityPercent",
        "99",
    ),
    (
        "cache hit rate over 80 %",
        "Microsoft.Insights/scheduledQueryRules",
        "cache.lookups",
        "cacheHitPercent",
        "80",
    ),
    (
        "Redis server load under 90 %",
        "Microsoft.Insights/metricAlerts",
        "serverLoad",
        "redisServerLoadPercent",
        "90",
    ),
    (
        "Postgres connections under 80 % of max_connections",
        "Microsoft.Insights/metricAlerts",
        "active_connections",
        "postgresConnectionsPercent",
        "80",
    ),
    (
        "Postgres CPU under 90 % for 5 minutes",
        "Microsoft.Insights/metricAlerts",
        "cpu_percent",
        "postgresCpuPercent",
        "90",
    ),
];

/// The one resource of `resource_type`.
fn the_one<'f>(files: &'f [BicepFile], resource_type: &str) -> Resource<'f> {
    let mut found = declared(files, resource_type);
    assert_eq!(found.len(), 1, "one {resource_type}");
    found.remove(0)
}

fn alerts_file(files: &[BicepFile]) -> &BicepFile {
    file(files, "infra/modules/alerts.bicep")
}

fn main_file(files: &[BicepFile]) -> &BicepFile {
    file(files, "infra/main.bicep")
}

fn file<'f>(files: &'f [BicepFile], path: &str) -> &'f BicepFile {
    files
        .iter()
        .find(|file| file.path == path)
        .unwrap_or_else(|| panic!("{path}"))
}

/// The action groups an alert notifies, as written (`actionGroup.id`).
fn notified(alert: &Resource<'_>) -> Vec<String> {
    let file = alert.file;
    let Some(actions) = alert.property("properties.actions") else {
        return Vec::new();
    };
    let ids: Vec<_> = match actions.kind() {
        // metricAlerts: [{ actionGroupId: ... }]
        "array" => crate::bicep::named_children(actions)
            .into_iter()
            .filter_map(|action| file.property(action, "actionGroupId"))
            .collect(),
        // scheduledQueryRules: { actionGroups: [...] }
        _ => file
            .property(actions, "actionGroups")
            .map(crate::bicep::named_children)
            .unwrap_or_default(),
    };
    ids.into_iter().map(|id| file.text(id).to_owned()).collect()
}

#[test]
fn every_runbook_alert_exists_with_its_threshold_and_notifies_the_action_group() {
    let files = infra_files();
    let alerts_bicep = alerts_file(&files);
    let main = main_file(&files);
    let mut problems = Vec::new();
    for (asked, resource_type, measures, threshold, default) in RUNBOOK_ALERTS {
        let found: Vec<Resource<'_>> = declared(&files, resource_type)
            .into_iter()
            .filter(|alert| {
                alert
                    .property("properties.criteria")
                    .is_some_and(|criteria| alert.file.text(criteria).contains(measures))
            })
            .collect();
        let [alert] = found.as_slice() else {
            problems.push(format!(
                "{asked}: {} alerts measure {measures}",
                found.len()
            ));
            continue;
        };
        let criteria = alert
            .file
            .text(alert.property("properties.criteria").unwrap());
        if !criteria.contains(threshold) {
            problems.push(format!(
                "{asked}: the threshold is not the parameter {threshold}"
            ));
        }
        // The module's default, and the deployment's parameter that main.bicep passes it.
        let deployment_parameter =
            format!("alert{}{}", threshold[..1].to_uppercase(), &threshold[1..]);
        for (file, parameter) in [
            (alerts_bicep, threshold.to_string()),
            (main, deployment_parameter.clone()),
        ] {
            let value = file
                .parameter_default(&parameter)
                .map(|node| file.text(node).to_owned());
            if value.as_deref() != Some(default) {
                problems.push(format!(
                    "{asked}: {} {parameter} defaults to {value:?}",
                    file.path
                ));
            }
        }
        if !main
            .source()
            .contains(&format!("{threshold}: {deployment_parameter}\n"))
        {
            problems.push(format!(
                "{asked}: main.bicep does not pass {deployment_parameter}"
            ));
        }
        if alert.literal("properties.enabled").as_deref() != Some("true") {
            problems.push(format!("{asked}: not enabled"));
        }
        if notified(alert) != ["actionGroup.id"] {
            problems.push(format!("{asked}: notifies {:?}", notified(alert)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_alert_notifies_the_action_group_which_mails_the_alert_email_parameter() {
    let files = infra_files();
    let group = the_one(&files, "Microsoft.Insights/actionGroups");
    assert_eq!(group.symbol, "actionGroup");
    let email = group
        .property("properties.emailReceivers[0].emailAddress")
        .map(|node| group.file.text(node));
    assert_eq!(email, Some("alertEmail"));
    let main = main_file(&files);
    assert!(
        main.parameter_default("alertEmail")
            .is_some_and(|value| main.text(value) == "string"),
        "alertEmail is a required deployment parameter"
    );
    let alerts: Vec<Resource<'_>> = [
        "Microsoft.Insights/metricAlerts",
        "Microsoft.Insights/scheduledQueryRules",
    ]
    .iter()
    .flat_map(|kind| declared(&files, kind))
    .collect();
    assert!(alerts.len() >= RUNBOOK_ALERTS.len());
    for alert in &alerts {
        assert_eq!(notified(alert), ["actionGroup.id"], "{}", alert.describe());
    }
}

#[test]
fn the_availability_test_probes_readiness_from_several_regions_and_alerts() {
    let files = infra_files();
    let test = the_one(&files, "Microsoft.Insights/webtests");
    assert_eq!(test.literal("kind").as_deref(), Some("standard"));
    let url = test.property("properties.Request.RequestUrl").unwrap();
    assert_eq!(test.file.text(url), "readinessUrl");
    let main = main_file(&files);
    assert!(
        main.string_contents()
            .iter()
            .any(|text| text.ends_with("/api/health/ready")),
        "main.bicep passes the readiness probe's URL"
    );
    let locations = test.property("properties.Locations").unwrap();
    assert!(crate::bicep::named_children(locations).len() >= 3);
    assert!(
        test.file
            .text(test.property("tags").unwrap())
            .contains("hidden-link:${appInsights.id}"),
        "linked to the Application Insights component"
    );
    let on_failures = declared(&files, "Microsoft.Insights/metricAlerts")
        .into_iter()
        .find(|alert| {
            alert
                .property("properties.criteria")
                .is_some_and(|criteria| {
                    alert
                        .file
                        .text(criteria)
                        .contains("'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'")
                })
        })
        .expect("an alert on failing locations");
    assert_eq!(
        on_failures
            .property("properties.criteria.webTestId")
            .map(|node| on_failures.file.text(node)),
        Some("readinessTest.id")
    );
}

#[test]
fn the_workbook_charts_what_the_runbook_watches() {
    let files = infra_files();
    let workbook = the_one(&files, "Microsoft.Insights/workbooks");
    let source = workbook.file.source();
    for chart in [
        "percentile(duration, 95)",
        "dependencies",
        "countif(success == false)",
        "availabilityResults",
        "cache.lookups",
        "db.client.connection.count.used",
        "serverLoad",
        "connectedclients",
        "cachehits",
        "active_connections",
        "cpu_percent",
        "disk_iops_consumed_percentage",
    ] {
        assert!(source.contains(chart), "the workbook charts {chart}");
    }
    assert!(workbook.property("properties.serializedData").is_some());
}
