{{
    config(severity='error', meta={
        "rule_id": "R04",
        "rows_checked_in": ["raw_tables"]
    })
}}
-- Every raw table of every loaded file is accounted for: a table with rows matches a layout
-- of the catalogue (seeds/raw_layouts.csv), and a table of a migrated layout is read in full
-- by its staging model. Returns the tables that are not: an export with a sheet nobody
-- declared, or a layout whose staging model does not read it, stops here instead of
-- vanishing with every other check green.
select
    source_file,
    source_sheet,
    table_name,
    raw_rows,
    rows_staged,
    status,
    coalesce(header_row, 0) as source_row,  -- 0: a SQLite table, which has no header row
    array_to_string(headers, ' | ') as headers,
    coalesce(layout, '(none)') as layout
from {{ ref('raw_tables') }}
where status in ('unrecognised', 'not_read')
