{{ clv_summary_by(['lifecycle_stage', 'is_high_value'], 'segment') }}
