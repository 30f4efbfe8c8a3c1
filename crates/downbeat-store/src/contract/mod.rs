//! The storage contract: what every [`Store`](crate::Store) backend must do, as test functions.
//!
//! A backend's test file provides an async function returning a [`Fixture`] (a fresh, empty
//! database plus a way to open a second handle on it) and invokes [`store_contract_tests!`],
//! which expands into one `#[tokio::test]` per contract case.

mod claims;
mod edges;
mod effects;
mod leases;
mod maintenance;
mod records;
mod support;
mod tasks;
mod workers;

pub use claims::*;
pub use edges::*;
pub use effects::*;
pub use leases::*;
pub use maintenance::*;
pub use records::*;
pub use support::{Fixture, Reopen};
pub use tasks::*;
pub use workers::*;

/// Expands into one test per contract case, each calling `$make().await` for its fixture.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:path) => {
        $crate::store_contract_tests!(@cases $make;
            creates_and_resolves_tasks,
            ambiguous_prefixes_name_candidates,
            plans_apply_atomically,
            plan_changes_apply_in_one_transaction,
            plan_changes_start_new_tasks_in_their_status,
            cycles_are_refused_with_their_path,
            transitions_follow_the_state_machine,
            containers_roll_up_and_cascade,
            every_change_is_logged,
            context_records_round_trip,
            objectives_are_linked_after_they_are_recorded,
            updates_and_filters,
            tasks_come_in_chunks_in_list_order,
            concurrent_writers_lose_nothing,
            archive_and_integrity,
            claims_are_exclusive_and_fenced,
            leases_renew_and_expire,
            retries_wait_for_their_time,
            concurrent_claims_never_overlap,
            stale_epoch_finishes_are_rejected,
            completion_effects_commit_with_the_completion,
            failing_effects_roll_back_the_completion,
            flags_are_kept_with_their_state_and_follow_up,
            concurrent_edges_cannot_close_a_cycle,
            event_readers_miss_nothing,
            ready_tasks_look_at_blockers_and_ancestors,
            workers_register_beat_and_leave,
            holds_last_until_their_task_ends_or_release,
            claims_chosen_before_a_hold_are_refused,
            group_caps_hold_across_claimers,
            meta_set_is_logged,
            decisions_are_proposed_then_decided,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::contract::$case($make().await).await;
            }
        )*
    };
}
