{#-
    The delivery-history sheets staged in schema raw, found at build time rather than listed:
    every raw table of a file whose name matches var('delivery_history_files') (a POSIX
    regex, case-insensitive) that has a 交易日期 column. A daily file loaded after the
    migration (`2025-06 commercial deliver history.xlsx`) joins the union with no change here.

    Returns a list of relations (empty while dbt parses, when nothing is queried).
-#}
{% macro delivery_history_relations() -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select distinct s.table_name
        from raw._sources as s
        where s.source_file ~* '{{ var("delivery_history_files") }}'
            and s.outcome <> 'failed'
            and exists (
                select 1
                from information_schema.columns as c
                where c.table_schema = 'raw'
                    and c.table_name = s.table_name
                    and c.column_name = '交易日期'
            )
        order by s.table_name
    {%- endset -%}
    {%- set relations = [] -%}
    {%- for name in run_query(query).columns[0].values() -%}
        {%- do relations.append(api.Relation.create(
            database=target.database, schema='raw', identifier=name)) -%}
    {%- endfor -%}
    {{ return(relations) }}
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


{#- The per-row columns int_delivery_rows_classified carries through each branch. -#}
{% macro delivery_row_columns() -%}
    source_system,
    source_file,
    source_sheet,
    source_row,
    load_id,
    client_code,
    client_code_raw,
    app_client_id,
    app_delivery_id,
    delivery_date,
    delivery_date_raw,
    delivery_time,
    salesperson,
    driver_name,
    vehicle_plate,
    short_name,
    address,
    address_raw,
    quarantine_reason,
    items_text,
    size_signature,
    content_hash
{%- endmacro %}
