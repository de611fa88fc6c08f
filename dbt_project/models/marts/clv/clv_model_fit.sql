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
        is_used_for_predictions

    from fitted

)

select * from final
