{#- The holdout check of every purchase model (customer_marts.clv.validation), with the
    model chosen for the predictions marked. -#}
with

validated as (

    select * from {{ ref('int_btyd_holdout_validated') }}

),

selected as (

    select distinct model
    from {{ ref('int_btyd_parameters_fitted') }}
    where is_selected_model and model <> 'gamma_gamma'

),

final as (

    select
        validated.model,
        validated.check_name,
        validated.bucket,
        validated.bucket_order,
        validated.customers,
        {{ quantity('validated.actual_repeat_purchases') }} as actual_repeat_purchases,
        {{ quantity('validated.predicted_repeat_purchases') }} as predicted_repeat_purchases,
        {{ money('validated.actual_revenue') }} as actual_revenue,
        {{ money('validated.predicted_revenue') }} as predicted_revenue,
        {{ quantity('validated.mae_per_customer') }} as mae_per_customer,
        {{ quantity('validated.correlation') }} as correlation,
        validated.status,
        validated.reason,
        selected.model is not null as is_selected_model,
        validated.calibration_end_date,
        validated.holdout_days,
        validated.as_of_date

    from validated
    left join selected on validated.model = selected.model

)

select * from final
{{ published_order() }}
