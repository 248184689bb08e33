{#- Every raw table as it stands now, with its rows and headers as written. -#}
with

tables as (

    {{ raw_tables_current(source('loader', 'sources'), source('loader', 'columns')) }}

)

select * from tables
