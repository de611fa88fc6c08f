{{ clv_summary_by(['cohort_month'], 'cohort') }}
