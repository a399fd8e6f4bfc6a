use super::*;

#[test]
fn objects_by_phase_follow_transitions_and_removal() {
    let m = Metrics::new();
    let a = ObjectRef::new("a").within("ns");
    let b = ObjectRef::new("b").within("ns");
    m.set_phase(&a, Some(Phase::Pending));
    m.set_phase(&b, Some(Phase::Pending));
    m.set_phase(&a, Some(Phase::Available));
    m.set_phase(&a, Some(Phase::Available));
    m.set_phase(&b, None);
    let text = m.encode();
    assert!(
        text.contains("maestro_operator_objects{phase=\"Available\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("maestro_operator_objects{phase=\"Pending\"} 0"),
        "{text}"
    );
}

#[test]
fn errors_are_counted_by_reason() {
    let m = Metrics::new();
    let t = m.reconcile_started();
    m.reconcile_finished(t, Some("MaestroUnavailable"));
    m.publish_finished("create", Duration::from_millis(3), Some("UnknownConsumer"));
    let text = m.encode();
    assert!(
        text.contains("maestro_operator_reconcile_errors_total{reason=\"MaestroUnavailable\"} 1"),
        "{text}"
    );
    assert!(
            text.contains(
                "maestro_operator_maestro_publish_errors_total{action=\"create\",reason=\"UnknownConsumer\"} 1"
            ),
            "{text}"
        );
}

#[test]
fn applyset_gauges_sum_the_sets_given_and_forget_those_gone() {
    let m = Metrics::new();
    let text = m.encode();
    for line in [
        "maestro_operator_applysets{phase=\"Ready\"} 0",
        "maestro_operator_applyset_consumers{state=\"Failed\"} 0",
        "maestro_operator_applyset_rollouts_total{result=\"complete\"} 0",
        "maestro_operator_applyset_rollouts_total{result=\"rolled_back\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    let sample = |phase: &str, consumers| SetSample {
        phase: phase.into(),
        consumers,
    };
    m.set_applysets(&[
        sample("Ready", [0, 0, 3, 0]),
        sample("Ready", [1, 0, 2, 0]),
        sample("Halted", [2, 0, 0, 1]),
    ]);
    m.applyset_rollout("rolled_back");
    let text = m.encode();
    for line in [
        "maestro_operator_applysets{phase=\"Ready\"} 2",
        "maestro_operator_applysets{phase=\"Halted\"} 1",
        "maestro_operator_applyset_consumers{state=\"Pending\"} 3",
        "maestro_operator_applyset_consumers{state=\"Succeeded\"} 5",
        "maestro_operator_applyset_consumers{state=\"Failed\"} 1",
        "maestro_operator_applyset_rollouts_total{result=\"rolled_back\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    m.set_applysets(&[sample("Ready", [0, 0, 3, 0])]);
    let text = m.encode();
    for line in [
        "maestro_operator_applysets{phase=\"Ready\"} 1",
        "maestro_operator_applysets{phase=\"Halted\"} 0",
        "maestro_operator_applyset_consumers{state=\"Failed\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
}

#[test]
fn drift_corrections_are_counted() {
    let m = Metrics::new();
    assert!(
        m.encode()
            .contains("maestro_operator_drift_corrections_total 0"),
        "exported before the first one"
    );
    m.drift_corrected();
    let text = m.encode();
    assert!(
        text.contains("maestro_operator_drift_corrections_total 1"),
        "{text}"
    );
}
