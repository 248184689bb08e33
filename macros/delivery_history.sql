{#-
    The delivery-history tables staged in schema raw, found at build time rather than
    listed: every raw table whose layout in the catalogue (seed raw_layouts, macro
    raw_layout_matched) is a history layout: history_daily (the real export's 5 columns,
    one row per client and delivery day) or history_transaction (編號/客戶, 業務員, 交易日期,
    交易時間 and the 16 quantities). Both layouts' file_pattern is
    var('delivery_history_files'), so a daily file loaded after the migration joins with no
    change here. A model calling this declares `-- depends_on: {{ ref('raw_layouts') }}`
    so the catalogue is loaded first.

    Returns a list of {'relation', 'layout', 'columns'} (empty while dbt parses, when nothing
    is queried).
-#}
{% macro delivery_history_relations() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set tables = '(' ~ raw_tables_current(
        source('loader', 'sources'), source('loader', 'columns')) ~ ')' -%}
    {%- set query -%}
        select matched.table_name, matched.layout
        from ({{ raw_layout_matched(tables, ref('raw_layouts')) }}) as matched
        where matched.layout in ('history_daily', 'history_transaction')
        order by matched.table_name
    {%- endset -%}
    {%- set found = [] -%}
    {%- for row in run_query(query).rows -%}
        {%- set relation = api.Relation.create(
            database=target.database, schema='raw', identifier=row[0]) -%}
        {%- do found.append({'relation': relation, 'layout': row[1],
                             'columns': raw_columns(relation)}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}


{#- The column names of a raw relation, as a list (empty while parsing). -#}
{% macro raw_columns(relation) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | list) }}
{%- endmacro %}


{#-
    The product columns of the history sheets, in sheet order. seeds/products.csv maps each
    header to its product code (history_column); tests/products_history_columns.sql checks
    that the two lists agree.
-#}
{% macro history_product_columns() -%}
    {{ return([
        '50公斤', '丙烷20', '丙烷16', '20公斤', '16公斤', '10公斤', '4公斤', '好運桶16',
        '瓶安桶10', '幸福丸4', '好運桶20', '流量50公斤', '流量20公斤', '流量16公斤',
        '流量好運20公斤', '流量好運16公斤'
    ]) }}
{%- endmacro %}


{#- The legacy app's delivered quantity columns, one per cylinder size (kg). -#}
{% macro app_size_columns() -%}
    {{ return({50: 'delivered_50kg', 20: 'delivered_20kg', 16: 'delivered_16kg',
               10: 'delivered_10kg', 4: 'delivered_4kg'}) }}
{%- endmacro %}


{#- The per-row columns int_delivery_rows_classified carries through each branch, of the
    relation `alias` when given. -#}
{% macro delivery_row_columns(alias=none) -%}
    {%- set columns = [
        'source_system', 'source_file', 'source_sheet', 'source_row', 'load_id',
        'layout', 'items_recorded', 'client_code', 'client_code_raw', 'app_client_id',
        'app_delivery_id', 'app_status', 'delivery_date', 'delivery_date_raw', 'delivery_time',
        'salesperson', 'driver_name', 'vehicle_plate', 'app_notes', 'app_returned',
        'short_name', 'address',
        'address_raw', 'items_text', 'content_hash'
    ] -%}
    {%- for column in columns %}
        {{ alias ~ '.' if alias else '' }}{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}


{#- A column of a raw history table, quoted, or a text NULL when the table lacks it (a
    layout without that column). -#}
{% macro history_column(columns, name) -%}
    {{ '"' ~ name ~ '"' if name in columns else 'cast(null as text)' }}
{%- endmacro %}
