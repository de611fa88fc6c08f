with

source as (

    select * from {{ source('raw', 'surveys') }}

),

renamed as (

    select
        response_id,
        customer_id,
        responded_at,
        cast({{ to_reporting_time('responded_at') }} as date) as response_date,
        nps_score,
        csat_score,
        ces_score,
        comment,
        channel,
        _file_name as source_file_name,
        _line_number as source_line_number

    from source

),

final as (

    select * from renamed
    where response_date <= {{ as_of_date() }}

)

select * from final
