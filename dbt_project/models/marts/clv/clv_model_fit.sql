with

fitted as (

    select * from {{ ref('int_btyd_parameters_fitted') }}

),

final as (

    select
        model,
        parameter,
        value,
        time_unit,
        log_likelihood,
        n_customers,
        converged,
        fitted_at,
        as_of_date,
        is_used_for_predictions,
        std_error,
        ci_low_95,
        ci_high_95,
        aic,
        bic,
        holdout_mae_per_customer,
        is_selected_model,
        selection_reason

    from fitted

)

select * from final
{{ published_order() }}
