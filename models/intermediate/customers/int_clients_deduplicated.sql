-- Every master row, with the reason it cannot be a customer (NULL: it is one; precedence:
-- seeds/quarantine_reasons.csv). The first row of each valid code is the customer; 公休日 is
-- parsed here.
with

master as (

    select * from {{ ref('stg_client_workbook__clients') }}

),

ranked as (

    select
        *,
        row_number() over (partition by client_code order by source_row) as nth_of_code
    from master

),

parsed as (

    select
        *,
        {{ first_quarantine_reason({
            'invalid_client_code': 'client_code is null',
            'duplicate_client_code': 'nth_of_code > 1',
        }) }} as quarantine_reason,
        -- 公休日: 1-7 a weekday (7 = Sunday), 6.7 two weekdays, Red national holidays
        case
            when closed_days_raw ~ '^[1-7](\.[1-7])?$'
                then array(
                    select distinct closed_day.day_number::integer
                    from
                        regexp_split_to_table(ranked.closed_days_raw, '\.')
                            as closed_day (day_number)
                    order by 1
                )
            else array[]::integer[]
        end as closed_weekdays,
        coalesce(lower(closed_days_raw) = 'red', false) as closed_on_national_holidays,
        case
            when closed_days_raw !~ '^[1-7](\.[1-7])?$' and lower(closed_days_raw) <> 'red'
                then closed_days_raw
        end as closed_days_unparsed
    from ranked

)

select * from parsed
