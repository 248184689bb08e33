-- Both Taiwan-date macros over every row of the vector seed, without the expected values:
-- loaders/tests/test_taiwan_date.py compiles this (dbt compile --select taiwan_date_check),
-- runs the SQL and compares each row with the Python twin, for the vectors and for
-- generated strings it adds to the seed table inside a transaction it rolls back.

with vectors as (
    select
        id,
        cast(earliest as date) as earliest_date,
        cast(latest as date) as latest_date,
        -- the seed writes inputs as JSON string bodies (see seeds/_seeds.yml)
        cast('"' || input || '"' as json) #>> '{}' as input_text
    from {{ ref('taiwan_date_vectors') }}
)

select
    id,
    input_text,
    earliest_date,
    latest_date,
    {{ taiwan_date('input_text', 'earliest_date', 'latest_date') }} as parsed_date,
    {{ taiwan_date_reason('input_text', 'earliest_date', 'latest_date') }} as reason
from vectors
order by id
