{#-
    Every client code the delivery history names that the client master lacks, described by
    its own history rows (the real history has 12,028 such codes beside the master's
    1,267). The rule, one per detail: 電子發票抬頭 (invoice_title), 客戶簡稱 (short_name) and
    地址 (address) each come from the client's latest row where that cell is not blank,
    latest meaning the newest delivery date (rows without a valid date last), then the
    newest load, then the last file, sheet and row. A detail no row has stays NULL: never a
    placeholder. The customer's lineage (source_file, source_sheet, source_row) is its
    latest row; details_lineage says which row each detail comes from. Rows of any outcome
    count (a row quarantined for its date still names its client), rows without a valid
    code cannot.
-#}
{{ config(materialized='table') }}

with

history as (

    select * from {{ ref('stg_delivery_history__deliveries') }}
    where client_code is not null

),

master_codes as (

    select client_code from {{ ref('int_clients_deduplicated') }}
    where quarantine_reason is null

),

outside_master as (

    select
        history.*,
        row_number() over (
            partition by history.client_code
            order by
                history.delivery_date desc nulls last,
                history.load_id desc,
                history.source_file desc,
                history.source_sheet desc,
                history.source_row desc
        ) as recency
    from history
    where not exists (
        select 1 from master_codes
        where master_codes.client_code = history.client_code
    )

),

lineaged as (

    select
        *,
        jsonb_build_object(
            'file', source_file, 'sheet', source_sheet, 'row', source_row
        ) as row_lineage
    from outside_master

),

described as (

    select
        client_code,

        -- each detail from the latest row that has it
        (array_agg(invoice_title order by recency)
            filter (where invoice_title is not null))[1] as invoice_title,
        (array_agg(short_name order by recency)
            filter (where short_name is not null))[1] as short_name,
        (array_agg(address order by recency)
            filter (where address is not null))[1] as address,
        (array_agg(address_raw order by recency)
            filter (where address is not null))[1] as address_raw,
        jsonb_strip_nulls(jsonb_build_object(
            '電子發票抬頭',
            (array_agg(row_lineage order by recency)
                filter (where invoice_title is not null))[1],
            '客戶簡稱',
            (array_agg(row_lineage order by recency)
                filter (where short_name is not null))[1],
            '地址',
            (array_agg(row_lineage order by recency)
                filter (where address is not null))[1]
        )) as details_lineage,

        -- the history's view of the client
        count(*) as history_rows,
        min(delivery_date) as first_delivery_date,
        max(delivery_date) as last_delivery_date,

        -- lineage: the latest row
        (array_agg(source_file order by recency))[1] as source_file,
        (array_agg(source_sheet order by recency))[1] as source_sheet,
        (array_agg(source_row order by recency))[1] as source_row
    from lineaged
    group by client_code

)

select * from described
