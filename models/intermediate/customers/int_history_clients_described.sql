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

-- the rank (recency) of the latest row that has each detail, beside every row's: the
-- rows of a client are already in recency order, so this takes no second sort
ranked as (

    select
        *,
        coalesce(min(recency) filter (where invoice_title is not null) over by_client, 1)
            as invoice_title_recency,
        coalesce(min(recency) filter (where short_name is not null) over by_client, 1)
            as short_name_recency,
        coalesce(min(recency) filter (where address is not null) over by_client, 1)
            as address_recency,
        count(*) over by_client as history_rows,
        min(delivery_date) over by_client as first_delivery_date,
        max(delivery_date) over by_client as last_delivery_date
    from outside_master
    window by_client as (partition by client_code)

),

-- the rows a client's details and lineage come from: at most four a client
kept as (

    select
        *,
        jsonb_build_object(
            'file', source_file, 'sheet', source_sheet, 'row', source_row
        ) as row_lineage
    from ranked
    where recency in (1, invoice_title_recency, short_name_recency, address_recency)

),

-- each detail from the latest row that has it (a client none of whose rows has a detail
-- takes its latest row's, NULL)
latest_details as (

    select
        client_code,
        min(history_rows) as history_rows,
        min(first_delivery_date) as first_delivery_date,
        min(last_delivery_date) as last_delivery_date,
        min(source_file) filter (where recency = 1) as source_file,
        min(source_sheet) filter (where recency = 1) as source_sheet,
        min(source_row) filter (where recency = 1) as source_row,
        min(invoice_title) filter (where recency = invoice_title_recency) as invoice_title,
        min(short_name) filter (where recency = short_name_recency) as short_name,
        min(address) filter (where recency = address_recency) as address,
        min(address_raw) filter (where recency = address_recency) as address_raw,
        (array_agg(row_lineage) filter (where recency = invoice_title_recency))[1]
            as invoice_title_lineage,
        (array_agg(row_lineage) filter (where recency = short_name_recency))[1]
            as short_name_lineage,
        (array_agg(row_lineage) filter (where recency = address_recency))[1]
            as address_lineage
    from kept
    group by client_code

),

described as (

    select
        client_code,
        invoice_title,
        short_name,
        address,
        address_raw,
        history_rows,
        first_delivery_date,
        last_delivery_date,
        source_file,
        source_sheet,
        source_row,
        jsonb_strip_nulls(jsonb_build_object(
            '電子發票抬頭', case when invoice_title is not null then invoice_title_lineage end,
            '客戶簡稱', case when short_name is not null then short_name_lineage end,
            '地址', case when address is not null then address_lineage end
        )) as details_lineage
    from latest_details

)

select * from described
