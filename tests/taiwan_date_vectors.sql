-- Every vector of seeds/taiwan_date_vectors.csv through taiwan_date and taiwan_date_reason,
-- with its bounds: returns the vectors where either macro differs from the expected value.

with vectors as (
    select
        id,
        expected_date,
        expected_reason,
        cast(earliest as date) as earliest_date,
        cast(latest as date) as latest_date,
        -- the seed writes inputs as JSON string bodies (see seeds/_seeds.yml)
        cast('"' || input || '"' as json) #>> '{}' as input_text
    from {{ ref('taiwan_date_vectors') }}
),

vector_results as (
    select
        id,
        input_text,
        expected_date,
        expected_reason,
        {{ taiwan_date('input_text', 'earliest_date', 'latest_date') }} as actual_date,
        {{ taiwan_date_reason('input_text', 'earliest_date', 'latest_date') }} as actual_reason
    from vectors
),

-- The same on literals and with each kind of bound argument: PostgreSQL folds constant
-- expressions while planning, and that must not reach make_date with an impossible date.
literal_results as (
    select
        'literal-impossible' as id,
        '1120229' as input_text,
        cast(null as date) as expected_date,
        'not_calendar_date' as expected_reason,
        {{ taiwan_date("'1120229'") }} as actual_date,
        {{ taiwan_date_reason("'1120229'") }} as actual_reason
    union all
    select
        'literal-roc-year-0' as id,
        '0000521' as input_text,
        null as expected_date,
        'not_calendar_date' as expected_reason,
        {{ taiwan_date("'0000521'") }} as actual_date,
        {{ taiwan_date_reason("'0000521'") }} as actual_reason
    union all
    select
        'literal-bound-iso-string' as id,
        '1140521' as input_text,
        null as expected_date,
        'out_of_range' as expected_reason,
        {{ taiwan_date("'1140521'", earliest='2025-05-22') }} as actual_date,
        {{ taiwan_date_reason("'1140521'", earliest='2025-05-22') }} as actual_reason
    union all
    select
        'literal-bound-sql-literal' as id,
        '1140521' as input_text,
        cast('2025-05-21' as date) as expected_date,
        null as expected_reason,
        {{ taiwan_date("'1140521'", latest="'2025-05-21'") }} as actual_date,
        {{ taiwan_date_reason("'1140521'", latest="'2025-05-21'") }} as actual_reason
    union all
    select
        'literal-bound-sql-expression' as id,
        '1140521' as input_text,
        null as expected_date,
        'out_of_range' as expected_reason,
        {{ taiwan_date("'1140521'", latest="date '2025-05-21' - 1") }} as actual_date,
        {{ taiwan_date_reason("'1140521'", latest="date '2025-05-21' - 1") }} as actual_reason
),

all_results as (
    select * from vector_results
    union all
    select * from literal_results
)

select *
from all_results
where
    actual_date is distinct from expected_date
    or actual_reason is distinct from expected_reason
