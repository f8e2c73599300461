"""The end-to-end tests whose workflow histories are kept for the replay tests: one per
path the application workflow can take."""

PATHS = (
    "instant_approval_issues_a_verifiable_certificate",
    "three_steps_then_a_certificate_for_the_enterprise",
    "rejection_delivers_reasons_and_issues_nothing",
    "supplement_then_approval_pauses_the_clock",
    "supplement_timeout_ends_the_application",
    "escalation_on_breach_marks_overdue_and_reaches_the_supervisor",
    "parallel_co_approval_needs_all_agencies",
    "parallel_any_needs_one_agency_and_cancels_the_rest",
    "withdrawal_in_review_and_during_supplement_issues_nothing",
    "failed_pledge_check_revokes_the_certificate",
    "low_rating_opens_a_follow_up_for_the_supervisor",
    "life_event_runs_bundled_matters_in_order",
    "publishing_the_missing_year_moves_provisional_due_times",
)
