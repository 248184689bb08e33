-- Master rows with a valid code, the first row of each code marked, closed days parsed.
with

master as (

    select * from {{ ref('stg_client_workbook__clients') }}

),

ranked as (

    select
        *,
        row_number() over (partition by client_code order by source_row) = 1 as is_first_of_code
    from master
    where client_code is not null

),

parsed as (

    select
        *,
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
