{#-
    The columns of a raw source table (every one text, as `luckygas load` stages them),
    without the loader's lineage columns: what macro source_or_empty gives a table not
    loaded yet, and what a unit test's fixture of it holds when it is not (macro
    get_fixture_sql). The client master's come from the column map (seeds/source_columns.csv,
    layout client_master), read only when needed; the app's are listed here.
-#}
{% macro raw_source_columns(source_name, table_name) -%}
    {%- set listed = {
        'legacy_app': {
            'clients': ['id', 'client_code', 'invoice_title', 'short_name', 'address',
                        'is_active', 'is_terminated'],
            'deliveries': ['id', 'client_id', 'scheduled_date', 'scheduled_time_start',
                           'actual_delivery_time', 'status', 'driver_id', 'vehicle_id',
                           'delivered_50kg', 'delivered_20kg', 'delivered_16kg',
                           'delivered_10kg', 'delivered_4kg', 'returned_50kg',
                           'returned_20kg', 'returned_16kg', 'returned_10kg',
                           'returned_4kg', 'notes'],
            'drivers': ['id', 'name'],
            'vehicles': ['id', 'plate_number'],
        },
        'client_workbook': {'clients': 'client_master'},
    } -%}
    {%- set columns = listed.get(source_name, {}).get(table_name) -%}
    {%- if columns is none -%}
        {{ exceptions.raise_compiler_error(
            'macro raw_source_columns does not know source ' ~ source_name ~ '.'
            ~ table_name) }}
    {%- endif -%}
    {%- if columns is string and execute -%}
        {#- the seed as built (in a unit test, ref() would be the test's own fixture) -#}
        {%- set column_map = api.Relation.create(
            database=target.database, schema=generate_schema_name('reference', none),
            identifier='source_columns') -%}
        {%- set columns = run_query(
            "select source_column from " ~ column_map ~ " where layout = '" ~ columns
            ~ "' order by source_column").columns[0].values() | list -%}
    {%- elif columns is string -%}
        {%- set columns = [] -%}
    {%- endif -%}
    {{ return(columns) }}
{%- endmacro %}
