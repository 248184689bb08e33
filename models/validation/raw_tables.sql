{{ config(materialized='table') }}
{#- Every raw table of every loaded file, accounted for: its layout in the catalogue (seed
    raw_layouts, macro raw_layout_matched), its role (migrated, and the staging model that
    reads it; or not_migrated, with the reason), and the rows that staging model read.
    status: migrated (every raw row staged), not_migrated (declared, with its reason),
    unrecognised (rows, and no known layout: nothing reads it) or not_read (a migrated
    layout whose rows its staging model did not read in full). Rule R04
    (tests/reconciliation/raw_tables_accounted.sql) fails on the last two, and
    `luckygas migrate` is then a no-go naming the file, sheet, rows and headers. -#}
with

matched as (

    {{ raw_layout_matched(ref('stg_loader__raw_tables'), ref('raw_layouts')) }}

),

-- rows each staging model read, per file and sheet (materialized: counted once, not again
-- for each raw table the join looks it up for, 0.65 s at full scale)
staged as materialized (

    select
        'stg_client_workbook__clients' as staging_model,
        source_file,
        source_sheet,
        count(*) as rows_staged
    from {{ ref('stg_client_workbook__clients') }}
    group by source_file, source_sheet

    union all

    select
        'stg_legacy_app__clients' as staging_model,
        source_file,
        source_table as source_sheet,
        count(*) as rows_staged
    from {{ ref('stg_legacy_app__clients') }}
    group by source_file, source_table

    union all

    select
        'stg_legacy_app__deliveries' as staging_model,
        source_file,
        source_sheet,
        count(*) as rows_staged
    from {{ ref('stg_legacy_app__deliveries') }}
    group by source_file, source_sheet

    union all

    select
        'stg_delivery_history__deliveries' as staging_model,
        source_file,
        source_sheet,
        count(*) as rows_staged
    from {{ ref('stg_delivery_history__deliveries') }}
    group by source_file, source_sheet

),

accounted as (

    select
        matched.source_file,
        matched.source_sheet,
        matched.table_name,
        matched.raw_rows,
        matched.headers,
        matched.layout,
        matched.role,
        matched.staging_model,
        matched.reason,
        matched.header_row,
        matched.file_kind,
        matched.load_id,
        coalesce(staged.rows_staged, 0) as rows_staged,
        case
            when matched.layout is null and matched.raw_rows > 0 then 'unrecognised'
            when matched.layout is null then 'not_migrated'
            when matched.role = 'not_migrated' then 'not_migrated'
            when coalesce(staged.rows_staged, 0) <> matched.raw_rows then 'not_read'
            else 'migrated'
        end as status,
        case
            when matched.layout is null and matched.raw_rows = 0
                then 'an empty table of no known layout: nothing to migrate'
            else matched.reason
        end as status_reason
    from matched
    left join staged
        on
            matched.staging_model = staged.staging_model
            and matched.source_file = staged.source_file
            and matched.source_sheet = staged.source_sheet

)

select * from accounted
